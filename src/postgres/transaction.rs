//! Transactions: the isolation level a call runs in, internal subtransactions, and the
//! commits of `CALL migrate.apply()`.

use std::panic::AssertUnwindSafe;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{ErrorParts, MigrateError};

/// The name of the transaction's isolation level when it keeps one snapshot for the whole
/// transaction (REPEATABLE READ, SERIALIZABLE); `None` for READ COMMITTED and below.
pub fn snapshot_bound_isolation() -> Option<&'static str> {
    // SAFETY: a plain read of a backend-local setting.
    let level = unsafe { pg_sys::XactIsoLevel } as u32;
    match level {
        pg_sys::XACT_READ_UNCOMMITTED | pg_sys::XACT_READ_COMMITTED => None,
        pg_sys::XACT_REPEATABLE_READ => Some("REPEATABLE READ"),
        _ => Some("SERIALIZABLE"),
    }
}

/// Runs `f` in an internal subtransaction: kept when `f` succeeds, rolled back when it fails
/// (with an error it returns or one the server raises), leaving the transaction usable.
pub fn subtransaction<R>(f: impl FnOnce() -> Result<R, MigrateError>) -> Result<R, MigrateError> {
    in_subtransaction(f, true)
}

/// Runs `f` in an internal subtransaction that is rolled back however `f` ends: only its
/// result (Rust values) remains.
pub fn rolled_back_subtransaction<R>(
    f: impl FnOnce() -> Result<R, MigrateError>,
) -> Result<R, MigrateError> {
    in_subtransaction(f, false)
}

fn in_subtransaction<R>(
    f: impl FnOnce() -> Result<R, MigrateError>,
    keep_on_success: bool,
) -> Result<R, MigrateError> {
    // SAFETY: the pattern of PL/pgSQL's exception blocks: the memory context and resource owner
    // of the caller are restored whichever way the subtransaction ends.
    let (memory, owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    // SAFETY: as above; the subtransaction is ended below in every case.
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(memory);
    }
    let result = PgTryBuilder::new(AssertUnwindSafe(f))
        .catch_others(|caught| Err(MigrateError::Server(ErrorParts::from(&caught))))
        .execute();
    // SAFETY: ends the subtransaction begun above and restores the caller's context and owner.
    unsafe {
        if keep_on_success && result.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(memory);
        pg_sys::CurrentResourceOwner = owner;
    }
    result
}

/// Whether the procedure call `fcinfo` belongs to may commit: a top-level `CALL`, outside a
/// transaction block.
pub fn call_may_commit(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    // SAFETY: fcinfo is this call's; a CALL passes a CallContext saying whether it may commit.
    unsafe {
        let context = (*fcinfo).context;
        !context.is_null()
            && (*context).type_ == pg_sys::NodeTag::T_CallContext
            && !(*(context as *mut pg_sys::CallContext)).atomic
    }
}

/// A nonatomic SPI connection, through which a procedure that may commit commits; pgrx's own
/// (atomic) connections nest inside it. Closed when dropped; on error, abort processing closes
/// it.
pub struct Committing(());

impl Committing {
    /// Call only where `call_may_commit` said yes.
    pub fn connect() -> Self {
        // SAFETY: the procedure call may commit, so a nonatomic connection is allowed.
        unsafe { pg_sys::SPI_connect_ext(pg_sys::SPI_OPT_NONATOMIC as i32) };
        Committing(())
    }

    /// Commits the transaction, and starts a new one at once.
    pub fn commit(&self) {
        // SAFETY: through the nonatomic connection, with no subtransaction open and no snapshot
        // of ours active (the runner drops its snapshot before the first commit).
        unsafe { pg_sys::SPI_commit() };
    }

    /// Closes the connection while a statement that commits on its own runs (`top_level`).
    pub(super) fn close(&self) {
        // SAFETY: the connection opened by `connect` or `reopen`, with nothing nested open.
        unsafe { pg_sys::SPI_finish() };
    }

    /// Opens the connection again after `close`.
    pub(super) fn reopen(&self) {
        // SAFETY: as in `connect`.
        unsafe { pg_sys::SPI_connect_ext(pg_sys::SPI_OPT_NONATOMIC as i32) };
    }
}

impl Drop for Committing {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: closes the connection opened in `connect`.
            unsafe { pg_sys::SPI_finish() };
        }
    }
}
