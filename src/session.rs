//! What a call does to its session: the runner lock, the isolation check, the guard against
//! nested calls, and the identity and settings under which bookkeeping and bodies run.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{ErrorParts, MigrateError};
use crate::gucs;

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
    if body_running() {
        Err(MigrateError::Nested { function })
    } else {
        Ok(())
    }
}

/// Whether a migration body is running in this backend.
pub fn body_running() -> bool {
    IN_BODY.get()
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

/// How long the runner lock is held: until the end of the transaction (`up`, `down`, ...), or of
/// the session unless released (`apply`, whose commits must not release it).
#[derive(Clone, Copy)]
pub enum LockScope {
    Transaction,
    Session,
}

/// Waits for the runner lock, at most `migrate.runner_wait`, then makes a snapshot taken after
/// the wait the active one while the returned guard lives. Read-only SPI reads under the active
/// snapshot and assigns no transaction id, so a runner that waited sees what the holder
/// committed, and a call that finds nothing to do writes nothing, not even a commit record.
/// How long a runner waits for the runner lock, in ms (0: no bound), and the setting that
/// bounds it: `migrate.runner_wait`, or the caller's own `lock_timeout` when it is shorter, as
/// for any other lock the caller waits for.
fn runner_wait_bound() -> (i32, &'static str) {
    let runner_wait = gucs::RUNNER_WAIT.get();
    // SAFETY: a GUC variable of this backend, read on its own thread.
    let lock_timeout = unsafe { pg_sys::LockTimeout };
    if lock_timeout > 0 && (runner_wait == 0 || lock_timeout < runner_wait) {
        (lock_timeout, "lock_timeout")
    } else {
        (runner_wait, "migrate.runner_wait")
    }
}

pub fn lock_runner(scope: LockScope) -> Result<FreshSnapshot, MigrateError> {
    let lock = match scope {
        LockScope::Transaction => pg_sys::pg_advisory_xact_lock_int8,
        LockScope::Session => pg_sys::pg_advisory_lock_int8,
    };
    // SAFETY: both functions take one int8 argument and return void.
    let take = || unsafe {
        pgrx::direct_function_call_as_datum(lock, &[RUNNER_LOCK_KEY.into_datum()]);
    };
    let (wait, bound) = runner_wait_bound();
    if wait == 0 {
        take();
    } else {
        // The wait is the server's own lock wait, bounded by lock_timeout, so waiting runners
        // show in pg_locks and take part in deadlock detection. A lock taken in a subtransaction
        // passes to the transaction when the subtransaction is kept.
        let timeout = lock_timeout_setting(wait);
        let (user, _) = current_identity();
        let waited = subtransaction(|| {
            with_identity(user, Some((c"lock_timeout", &timeout)), take);
            Ok(())
        });
        match waited {
            Err(MigrateError::Server(error))
                if error.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE =>
            {
                return Err(MigrateError::RunnerBusy {
                    waited_ms: wait,
                    bound,
                    holder: runner_lock_holder()?,
                });
            }
            other => other?,
        }
    }
    // SAFETY: in READ COMMITTED GetTransactionSnapshot takes a new snapshot, which
    // PushActiveSnapshot copies.
    unsafe {
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        Ok(FreshSnapshot(pg_sys::GetActiveSnapshot()))
    }
}

/// The session-level runner lock `apply` holds across its commits, released when dropped: on
/// success and on error alike (and by the server when the session ends).
pub struct SessionRunnerLock(());

impl SessionRunnerLock {
    /// Call right after `lock_runner(LockScope::Session)` succeeded.
    pub fn held() -> Self {
        SessionRunnerLock(())
    }
}

impl Drop for SessionRunnerLock {
    fn drop(&mut self) {
        // SAFETY: the function takes one int8 argument and returns a bool; it only gives back a
        // lock this session holds.
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::pg_advisory_unlock_int8,
                &[RUNNER_LOCK_KEY.into_datum()],
            );
        }
    }
}

/// The process holding this database's runner lock, if any.
fn runner_lock_holder() -> Result<Option<i32>, MigrateError> {
    Ok(Spi::connect(|client| {
        let rows = client.select(
            "SELECT l.pid FROM pg_catalog.pg_locks l
              WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted
                AND l.classid OPERATOR(pg_catalog.=) $1 AND l.objid OPERATOR(pg_catalog.=) $2
                AND l.objsubid OPERATOR(pg_catalog.=) 1
                AND l.database OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                                        WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
              LIMIT 1",
            None,
            &[
                pg_sys::Oid::from((RUNNER_LOCK_KEY >> 32) as u32).into(),
                pg_sys::Oid::from(RUNNER_LOCK_KEY as u32).into(),
            ],
        )?;
        if rows.is_empty() {
            Ok(None)
        } else {
            rows.first().get_one::<i32>()
        }
    })?)
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
/// nest level of its own, with `setting` (name, value) made there when given. Settings made
/// inside are undone afterwards, so neither a body's `SET` nor bookkeeping's `search_path`
/// reaches anything that runs later. On error, transaction or subtransaction abort restores
/// identity and settings.
fn with_identity<R>(
    role: pg_sys::Oid,
    setting: Option<(&CStr, &CStr)>,
    f: impl FnOnce() -> R,
) -> R {
    let (saved_user, saved_context) = current_identity();
    // SAFETY: nest levels and identity are restored below, or by abort processing on error.
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    if let Some((name, value)) = setting {
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

fn lock_timeout_setting(milliseconds: i32) -> CString {
    CString::new(format!("{milliseconds}ms")).expect("no NUL in a number")
}

/// Bookkeeping: as the extension's owner, with `search_path = pg_catalog, pg_temp`, so callers
/// need no rights on the tables and nothing on their search path is consulted.
pub fn as_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    with_identity(owner, Some((c"search_path", c"pg_catalog, pg_temp")), f)
}

/// A body: as the role that registered it, with the caller's settings and
/// `lock_timeout = migrate.lock_timeout`.
pub fn as_registrant<R>(registrant: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let timeout = lock_timeout_setting(gucs::LOCK_TIMEOUT.get());
    with_identity(registrant, Some((c"lock_timeout", &timeout)), f)
}

/// Runs `f` in an internal subtransaction: kept when `f` succeeds, rolled back when it fails
/// (with an error it returns or one the server raises), leaving the transaction usable.
pub fn subtransaction<R>(f: impl FnOnce() -> Result<R, MigrateError>) -> Result<R, MigrateError> {
    in_subtransaction(f, true)
}

/// Runs `f` in an internal subtransaction that is rolled back however `f` ends: only its
/// result (Rust values) remains.
pub fn rolled_back<R>(f: impl FnOnce() -> Result<R, MigrateError>) -> Result<R, MigrateError> {
    in_subtransaction(f, false)
}

fn in_subtransaction<R>(
    f: impl FnOnce() -> Result<R, MigrateError>,
    keep_on_success: bool,
) -> Result<R, MigrateError> {
    // SAFETY: the pattern of PL/pgSQL's exception blocks: the memory context and resource owner
    // of the caller are restored whichever way the subtransaction ends.
    let (memory, owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(memory);
    }
    let result = PgTryBuilder::new(AssertUnwindSafe(f))
        .catch_others(|caught| Err(MigrateError::Server(ErrorParts::from(&caught))))
        .execute();
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

/// Reading files on the database server is for roles with the rights of `pg_read_server_files`.
pub fn require_server_file_reader() -> Result<(), MigrateError> {
    // SAFETY: plain catalog lookups about the current user.
    let allowed = unsafe {
        pg_sys::has_privs_of_role(
            pg_sys::GetUserId(),
            pg_sys::Oid::from(pg_sys::ROLE_PG_READ_SERVER_FILES),
        )
    };
    if allowed {
        Ok(())
    } else {
        Err(MigrateError::NotServerFileReader)
    }
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
