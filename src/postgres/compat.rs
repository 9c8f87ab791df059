//! What differs between the PostgreSQL majors the extension builds for (14 to 18), in one place.

use std::ffi::{CStr, c_char};

use pgrx::pg_sys;

/// Reserves a GUC prefix: later settings under it that no one defined are refused (15 on) or
/// warned about (14).
pub fn reserve_guc_prefix(prefix: &CStr) {
    // SAFETY: a static, NUL-terminated name.
    unsafe {
        #[cfg(feature = "pg14")]
        pg_sys::EmitWarningsOnPlaceholders(prefix.as_ptr());
        #[cfg(not(feature = "pg14"))]
        pg_sys::MarkGUCPrefixReserved(prefix.as_ptr());
    }
}

/// The text of a `T_String` parse node: a `Value` up to 14, a `String` from 15.
///
/// # Safety
/// `node` must be a valid node of type `T_String`.
pub unsafe fn string_node_text(node: *mut pg_sys::Node) -> *const c_char {
    // SAFETY: the caller passes a T_String node, which is this major's struct.
    unsafe {
        #[cfg(feature = "pg14")]
        return (*(node as *mut pg_sys::Value)).val.str_;
        #[cfg(not(feature = "pg14"))]
        return (*(node as *mut pg_sys::String)).sval;
    }
}

/// Takes `tag` in `mode` once more, for the current resource owner, without waiting, and returns
/// the backend's own entry for it. 18 added an argument: whether to log a failure to get it.
///
/// # Safety
/// Inside a transaction; the lock must be held already, so that the call never waits.
pub unsafe fn acquire_again(
    tag: &pg_sys::LOCKTAG,
    mode: pg_sys::LOCKMODE,
) -> *mut pg_sys::LOCALLOCK {
    let mut local: *mut pg_sys::LOCALLOCK = std::ptr::null_mut();
    // SAFETY: `local` is a valid out-pointer; the caller holds the lock, so nothing waits.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::LockAcquireExtended(tag, mode, false, true, true, &mut local);
        #[cfg(feature = "pg18")]
        pg_sys::LockAcquireExtended(tag, mode, false, true, true, &mut local, false);
    }
    local
}
