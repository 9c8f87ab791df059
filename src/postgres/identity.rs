//! Who a piece of work runs as, and under which settings: the caller, the extension's owner for
//! the bookkeeping, a body's registrant for the body.

use std::ffi::{CStr, CString};

use pgrx::pg_sys;

use crate::gucs;

/// The current user and security context.
pub(super) fn current_identity() -> (pg_sys::Oid, i32) {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: both out-pointers are valid.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    (user, context)
}

/// The role the caller acts as (`current_user`), with its name.
pub fn current_role() -> (pg_sys::Oid, String) {
    let (user, _) = current_identity();
    // SAFETY: the current user id always names a role.
    let name = unsafe { CStr::from_ptr(pg_sys::GetUserNameFromId(user, false)) };
    (user, name.to_string_lossy().into_owned())
}

/// Runs `f` as `role` (when it is not the caller) the way SECURITY DEFINER does, inside a GUC
/// nest level of its own, with `settings` (name, value) made there. Settings made inside are
/// undone afterwards, so neither a body's `SET` nor bookkeeping's `search_path` reaches
/// anything that runs later. On error, transaction or subtransaction abort restores identity
/// and settings.
fn with_identity<R>(role: pg_sys::Oid, settings: &[(&CStr, &CStr)], f: impl FnOnce() -> R) -> R {
    let (saved_user, saved_context) = current_identity();
    // SAFETY: the nest level is closed below, or by abort processing on error.
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    for (name, value) in settings {
        set_in_nest_level(name, value);
    }
    if role != saved_user {
        // SECURITY_LOCAL_USERID_CHANGE makes SET ROLE and SET SESSION AUTHORIZATION fail inside,
        // so nothing in `f` can climb back to the caller's identity.
        // SAFETY: the identity is restored below, or by abort processing on error.
        unsafe {
            pg_sys::SetUserIdAndSecContext(
                role,
                saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
            )
        };
    }
    let result = f();
    // SAFETY: the nest level opened above, and the identity saved above.
    unsafe {
        pg_sys::AtEOXact_GUC(false, nest_level);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
    }
    result
}

/// Sets `name` to `value` until the current GUC nest level ends.
fn set_in_nest_level(name: &CStr, value: &CStr) {
    // SAFETY: two NUL-terminated strings; GUC_ACTION_SAVE undoes it at the nest level's end.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
}

/// Sets `lock_timeout` to `milliseconds` until the current GUC nest level ends.
pub(super) fn set_lock_timeout(milliseconds: i32) {
    set_in_nest_level(c"lock_timeout", &lock_timeout_setting(milliseconds));
}

/// A `lock_timeout` value of `milliseconds`.
fn lock_timeout_setting(milliseconds: i32) -> CString {
    CString::new(format!("{milliseconds}ms")).expect("no NUL in a number")
}

/// Runs `f` as the caller, with `lock_timeout` set to `milliseconds` inside.
pub(super) fn with_lock_timeout<R>(milliseconds: i32, f: impl FnOnce() -> R) -> R {
    let (user, _) = current_identity();
    let timeout = lock_timeout_setting(milliseconds);
    with_identity(user, &[(c"lock_timeout", &timeout)], f)
}

/// Bookkeeping: as the extension's owner, with `search_path = pg_catalog, pg_temp`, so callers
/// need no rights on the tables and nothing on their search path is consulted.
pub fn as_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    pinned_as(owner, f)
}

/// As `role`, with `search_path = pg_catalog, pg_temp`: what the session's search path holds
/// changes nothing.
pub fn pinned_as<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    // control run "bookkeeping with the caller's search_path"
    with_identity(role, &[(c"search_path", c"pg_catalog, pg_temp")], f)
}

/// A body: as the role that registered it, with the caller's settings and
/// `lock_timeout = migrate.lock_timeout`; in a tenant, with `search_path` set to the tenant's
/// schema (`search_path`, quoted).
pub fn as_registrant<R>(
    registrant: pg_sys::Oid,
    search_path: Option<&CStr>,
    f: impl FnOnce() -> R,
) -> R {
    let timeout = lock_timeout_setting(gucs::lock_timeout_ms());
    let mut settings = vec![(c"lock_timeout", timeout.as_c_str())];
    // control run "bodies outside their tenant's schema"
    settings.extend(search_path.map(|path| (c"search_path", path)));
    with_identity(registrant, &settings, f)
}

/// Whether the current user has the rights of `pg_read_server_files`.
pub fn reads_server_files() -> bool {
    // SAFETY: plain catalog lookups about the current user.
    unsafe {
        pg_sys::has_privs_of_role(
            pg_sys::GetUserId(),
            pg_sys::Oid::from(pg_sys::ROLE_PG_READ_SERVER_FILES),
        )
    }
}

/// Resolves a role name stored in the tables.
pub fn role_oid(name: &str) -> Option<pg_sys::Oid> {
    let name = CString::new(name).ok()?;
    // SAFETY: missing_ok = true, so an unknown name returns InvalidOid instead of raising.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}
