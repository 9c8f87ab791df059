//! Plain reads of this backend's state, and waiting on its latch.

use std::time::{Duration, Instant};

use pgrx::pg_sys;
use pgrx::prelude::*;

/// The five-character SQLSTATE of `code`.
pub fn sqlstate(code: PgSqlErrorCode) -> String {
    // SAFETY: unpack_sql_state returns a pointer to a static buffer holding 5 characters.
    let text = unsafe { std::ffi::CStr::from_ptr(pg_sys::unpack_sql_state(code as i32)) };
    text.to_string_lossy().into_owned()
}

/// The oid of this backend's database.
pub fn database() -> pg_sys::Oid {
    // SAFETY: set before any statement runs, and never changed afterwards.
    unsafe { pg_sys::MyDatabaseId }
}

/// The session's temporary schema, if it has one yet.
pub fn temporary_schema() -> Option<pg_sys::Oid> {
    let mut schema = pg_sys::InvalidOid;
    let mut toast_schema = pg_sys::InvalidOid;
    // SAFETY: two valid out-pointers.
    unsafe { pg_sys::GetTempNamespaceState(&mut schema, &mut toast_schema) };
    (schema != pg_sys::InvalidOid).then_some(schema)
}

/// The session's own `lock_timeout`, in ms (0: none).
pub fn lock_timeout_ms() -> i32 {
    // SAFETY: a GUC variable of this backend, read on its own thread.
    unsafe { pg_sys::LockTimeout }
}

/// Sleeps `milliseconds`, answering cancel and termination requests meanwhile.
pub fn sleep(milliseconds: u64) {
    let deadline = Instant::now() + Duration::from_millis(milliseconds);
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        // SAFETY: MyLatch is the backend's own latch.
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                left.as_millis().max(1) as std::ffi::c_long,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
        }
        pg_sys::check_for_interrupts!();
    }
}

/// Calls `forget` at the end of every transaction of this backend (commit or abort): for what
/// is read once per transaction. Install once, from `_PG_init`.
pub fn at_transaction_end(forget: fn()) {
    #[pg_guard]
    unsafe extern "C-unwind" fn ended(
        event: pg_sys::XactEvent::Type,
        forget: *mut std::ffi::c_void,
    ) {
        use pg_sys::XactEvent::*;
        if matches!(
            event,
            XACT_EVENT_COMMIT
                | XACT_EVENT_ABORT
                | XACT_EVENT_PARALLEL_COMMIT
                | XACT_EVENT_PARALLEL_ABORT
        ) {
            // SAFETY: the pointer is the `fn()` passed to `at_transaction_end`.
            let forget: fn() = unsafe { std::mem::transmute(forget) };
            forget();
        }
    }
    // SAFETY: the callback stays registered for the backend's life, and `forget` is a plain
    // function pointer, valid as long.
    unsafe { pg_sys::RegisterXactCallback(Some(ended), forget as *mut std::ffi::c_void) };
}
