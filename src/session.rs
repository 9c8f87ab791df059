//! What a call does to its session: the runner lock, the isolation check, the guard against
//! nested calls, and the identity and settings under which bookkeeping and bodies run.

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::MigrateError;

/// The advisory lock key every runner takes, one per database: the bytes of "migrate\0" read as
/// a big-endian integer. In `pg_locks` it appears as `classid = 1835624306`, `objid = 1635017984`,
/// `objsubid = 1`.
pub const RUNNER_LOCK_KEY: i64 = 7_883_946_363_647_714_560;

thread_local! {
    static IN_BODY: Cell<bool> = const { Cell::new(false) };
}

/// Refuses to start `function` while a migration body is running in this backend. Advisory
/// locks are re-entrant, so the runner lock alone would let a body start a nested run.
pub fn refuse_nested(function: &'static str) -> Result<(), MigrateError> {
    if IN_BODY.get() {
        Err(MigrateError::Nested { function })
    } else {
        Ok(())
    }
}

/// Marks a body as running until dropped, also when an error unwinds through it.
pub struct BodyRunning(());

impl BodyRunning {
    pub fn start() -> Self {
        IN_BODY.set(true);
        BodyRunning(())
    }
}

impl Drop for BodyRunning {
    fn drop(&mut self) {
        IN_BODY.set(false);
    }
}

/// A runner reads state after waiting for the lock; only READ COMMITTED gives it a snapshot
/// that sees what the runner it waited for committed.
pub fn require_read_committed(function: &'static str) -> Result<(), MigrateError> {
    // SAFETY: a plain read of a backend-local setting.
    let level = unsafe { pg_sys::XactIsoLevel } as u32;
    match level {
        pg_sys::XACT_READ_UNCOMMITTED | pg_sys::XACT_READ_COMMITTED => Ok(()),
        pg_sys::XACT_REPEATABLE_READ => Err(MigrateError::IsolationLevel {
            function,
            level: "REPEATABLE READ",
        }),
        _ => Err(MigrateError::IsolationLevel {
            function,
            level: "SERIALIZABLE",
        }),
    }
}

/// Waits for the runner lock, held until the transaction ends, then makes a snapshot taken after
/// the wait the active one while the returned guard lives. Read-only SPI reads under the active
/// snapshot and assigns no transaction id, so a runner that waited sees what the holder
/// committed, and a call that finds nothing to do writes nothing, not even a commit record.
pub fn lock_runner() -> FreshSnapshot {
    // SAFETY: the function takes one int8 argument and returns void; in READ COMMITTED
    // GetTransactionSnapshot takes a new snapshot, which PushActiveSnapshot copies.
    unsafe {
        pgrx::direct_function_call_as_datum(
            pg_sys::pg_advisory_xact_lock_int8,
            &[RUNNER_LOCK_KEY.into_datum()],
        );
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        FreshSnapshot(pg_sys::GetActiveSnapshot())
    }
}

pub struct FreshSnapshot(pg_sys::Snapshot);

impl Drop for FreshSnapshot {
    fn drop(&mut self) {
        // After an error, snapshots of the failed statement may lie above ours; (sub)transaction
        // abort unwinds the whole stack, so only our own is popped, and only when on top.
        unsafe {
            if !std::thread::panicking()
                && pg_sys::ActiveSnapshotSet()
                && pg_sys::GetActiveSnapshot() == self.0
            {
                pg_sys::PopActiveSnapshot();
            }
        }
    }
}

fn current_identity() -> (pg_sys::Oid, i32) {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: both out-pointers are valid.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    (user, context)
}

/// The role the caller acts as (`current_user`).
pub fn current_role() -> (pg_sys::Oid, String) {
    let (user, _) = current_identity();
    // SAFETY: the current user id always names a role.
    let name = unsafe { std::ffi::CStr::from_ptr(pg_sys::GetUserNameFromId(user, false)) };
    (user, name.to_string_lossy().into_owned())
}

/// Runs `f` as `role` (when it is not the caller) the way SECURITY DEFINER does, inside a GUC
/// nest level of its own, with `search_path` set to `search_path` when given. Settings made
/// inside are undone afterwards, so neither a body's `SET` nor bookkeeping's `search_path`
/// reaches anything that runs later. On error, transaction or subtransaction abort restores
/// identity and settings.
fn with_identity<R>(
    role: pg_sys::Oid,
    search_path: Option<&std::ffi::CStr>,
    f: impl FnOnce() -> R,
) -> R {
    let (saved_user, saved_context) = current_identity();
    // SAFETY: nest levels and identity are restored below, or by abort processing on error.
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    if let Some(path) = search_path {
        unsafe {
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                path.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
    }
    if role != saved_user {
        // SECURITY_LOCAL_USERID_CHANGE makes SET ROLE and SET SESSION AUTHORIZATION fail inside,
        // so nothing in `f` can climb back to the caller's identity.
        unsafe {
            pg_sys::SetUserIdAndSecContext(
                role,
                saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
            )
        };
    }
    let result = f();
    unsafe {
        pg_sys::AtEOXact_GUC(false, nest_level);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
    }
    result
}

/// Bookkeeping: as the extension's owner, with `search_path = pg_catalog, pg_temp`, so callers
/// need no rights on the tables and nothing on their search path is consulted.
pub fn as_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    with_identity(owner, Some(c"pg_catalog, pg_temp"), f)
}

/// A body: as the role that registered it, with the caller's settings.
pub fn as_registrant<R>(registrant: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    with_identity(registrant, None, f)
}

/// Resolves a role name stored in the tables.
pub fn role_oid(name: &str) -> Option<pg_sys::Oid> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: missing_ok = true, so an unknown name returns InvalidOid instead of raising.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// The role that owns the extension, and so its tables.
pub fn extension_owner() -> Result<pg_sys::Oid, MigrateError> {
    // Fully qualified, operator included: this runs under the caller's search_path.
    let owner = Spi::connect(|client| {
        client
            .select(
                "SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'migrations'",
                Some(1),
                &[],
            )?
            .first()
            .get_one::<pg_sys::Oid>()
    })?;
    Ok(owner.expect("the extension is installed while its functions run"))
}
