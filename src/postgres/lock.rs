//! The runner lock: one advisory lock per database that every registering, applying and
//! reverting call waits for, and the snapshot taken after the wait.

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::{backend, identity, transaction};
use crate::error::MigrateError;
use crate::gucs;

/// The advisory lock key every runner takes, one per database: the bytes of "migrate\0" read as
/// a big-endian integer. In `pg_locks` it appears as `classid = 1835624306`, `objid = 1635017984`,
/// `objsubid = 1`.
pub const RUNNER_LOCK_KEY: i64 = 7_883_946_363_647_714_560;

/// The advisory lock key held, besides the runner lock, while a non-transactional migration
/// runs its statements: "migrate\x01", `objid = 1635017985` in `pg_locks`. Its holder lets go
/// of the runner lock meanwhile, so that registering callers, which wait inside a transaction
/// and so with a snapshot, never keep a `CREATE INDEX CONCURRENTLY` waiting; runners that apply
/// or revert wait for this one instead.
pub const LANE_LOCK_KEY: i64 = RUNNER_LOCK_KEY + 1;

/// How long the runner lock is held: until the end of the transaction (`up`, `down`, ...), or of
/// the session unless released (`apply`, whose commits must not release it).
#[derive(Clone, Copy)]
pub enum LockScope {
    Transaction,
    Session,
}

/// How long a runner waits for the runner lock, in ms (0: no bound), and the setting that
/// bounds it: `migrate.runner_wait`, or the caller's own `lock_timeout` when it is shorter, as
/// for any other lock the caller waits for.
fn runner_wait_bound() -> (i32, &'static str) {
    let runner_wait = gucs::runner_wait_ms();
    let lock_timeout = backend::lock_timeout_ms();
    if lock_timeout > 0 && (runner_wait == 0 || lock_timeout < runner_wait) {
        (lock_timeout, "lock_timeout")
    } else {
        (runner_wait, "migrate.runner_wait")
    }
}

/// Waits for the runner lock, at most as long as `runner_wait_bound` says, then makes a snapshot
/// taken after the wait the active one while the returned guard lives. Read-only SPI reads under
/// the active snapshot and assigns no transaction id, so a runner that waited sees what the
/// holder committed, and a call that finds nothing to do writes nothing, not even a commit
/// record.
pub fn lock_runner(scope: LockScope) -> Result<RunnerLock, MigrateError> {
    let lock = match scope {
        LockScope::Transaction => pg_sys::pg_advisory_xact_lock_int8,
        LockScope::Session => pg_sys::pg_advisory_lock_int8,
    };
    // control run "no runner lock"
    wait_for(lock, RUNNER_LOCK_KEY)?;
    // Built only for a session-level lock: dropping one releases it.
    let session = matches!(scope, LockScope::Session).then(|| SessionRunnerLock(()));
    // SAFETY: in READ COMMITTED GetTransactionSnapshot takes a new snapshot, which
    // PushActiveSnapshot copies.
    let snapshot = unsafe {
        // control run "the snapshot from before the wait"
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        FreshSnapshot(pg_sys::GetActiveSnapshot())
    };
    Ok(RunnerLock {
        snapshot: Some(snapshot),
        _session: session,
    })
}

/// Takes the advisory lock `key` with `lock` (one int8 argument, returning void), waiting at
/// most as long as `runner_wait_bound` says.
fn wait_for(
    lock: unsafe fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum,
    key: i64,
) -> Result<(), MigrateError> {
    // SAFETY: the functions passed take one int8 argument and return void.
    let take = || unsafe {
        pgrx::direct_function_call_as_datum(lock, &[key.into_datum()]);
    };
    let (wait, bound) = runner_wait_bound();
    if wait == 0 {
        take();
        return Ok(());
    }
    // The wait is the server's own lock wait, bounded by lock_timeout, so waiting runners show
    // in pg_locks and take part in deadlock detection. A lock taken in a subtransaction passes
    // to the transaction when the subtransaction is kept.
    let waited = transaction::subtransaction(|| {
        identity::with_lock_timeout(wait, take);
        Ok(())
    });
    match waited {
        Err(MigrateError::Server(error))
            if error.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE =>
        {
            Err(MigrateError::RunnerBusy {
                waited_ms: wait,
                bound,
                holder: lock_holder(key)?,
            })
        }
        other => other,
    }
}

/// Whether another session runs the statements of a non-transactional migration: `Some` with
/// its process when one does.
pub fn lane_holder() -> Result<Option<Option<i32>>, MigrateError> {
    // SAFETY: the function takes one int8 argument and returns a bool.
    let free = unsafe {
        bool::from_datum(
            pgrx::direct_function_call_as_datum(
                pg_sys::pg_try_advisory_lock_shared_int8,
                &[LANE_LOCK_KEY.into_datum()],
            )
            .expect("returns a bool"),
            false,
        )
        .unwrap_or(false)
    };
    if free {
        unlock(pg_sys::pg_advisory_unlock_shared_int8, LANE_LOCK_KEY);
        return Ok(None);
    }
    Ok(Some(lock_holder(LANE_LOCK_KEY)?))
}

/// Waits (as `wait_for` does) until no session runs non-transactional statements. Call it
/// with no snapshot held: right after a commit.
pub fn wait_for_lane() -> Result<(), MigrateError> {
    wait_for(pg_sys::pg_advisory_lock_shared_int8, LANE_LOCK_KEY)?;
    unlock(pg_sys::pg_advisory_unlock_shared_int8, LANE_LOCK_KEY);
    Ok(())
}

/// The lock `LANE_LOCK_KEY`, held for the session while a non-transactional migration runs,
/// released when dropped.
pub struct LaneLease(());

impl LaneLease {
    /// Waits only for runners that are themselves waiting for the lane, each for an instant.
    pub fn take() -> Self {
        // SAFETY: the function takes one int8 argument and returns void.
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::pg_advisory_lock_int8,
                &[LANE_LOCK_KEY.into_datum()],
            );
        }
        LaneLease(())
    }
}

impl Drop for LaneLease {
    fn drop(&mut self) {
        unlock(pg_sys::pg_advisory_unlock_int8, LANE_LOCK_KEY);
    }
}

/// Gives back a session-level advisory lock this session holds (`unlock` returns a bool).
fn unlock(unlock: unsafe fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum, key: i64) {
    // SAFETY: the functions passed take one int8 argument and return a bool; they only give
    // back a lock this session holds.
    unsafe {
        pgrx::direct_function_call_as_datum(unlock, &[key.into_datum()]);
    }
}

/// The runner lock a call holds, and the snapshot taken after waiting for it.
pub struct RunnerLock {
    snapshot: Option<FreshSnapshot>,
    _session: Option<SessionRunnerLock>,
}

impl RunnerLock {
    /// Ends the snapshot once the reads that needed it are done: an active snapshot would stop
    /// apply()'s commits. The lock stays held.
    pub fn drop_snapshot(&mut self) {
        self.snapshot = None;
    }
}

/// The session-level runner lock `apply` holds across its commits, released when dropped: on
/// success and on error alike (and by the server when the session ends).
struct SessionRunnerLock(());

impl Drop for SessionRunnerLock {
    fn drop(&mut self) {
        unlock(pg_sys::pg_advisory_unlock_int8, RUNNER_LOCK_KEY);
    }
}

/// The process holding the advisory lock `key` in this database, if any.
fn lock_holder(key: i64) -> Result<Option<i32>, MigrateError> {
    Ok(Spi::connect(|client| {
        let rows = client.select(
            "SELECT l.pid FROM pg_catalog.pg_locks l
              WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted
                AND l.classid OPERATOR(pg_catalog.=) $1 AND l.objid OPERATOR(pg_catalog.=) $2
                AND l.objsubid OPERATOR(pg_catalog.=) 1
                AND l.database OPERATOR(pg_catalog.=) $3
              LIMIT 1",
            None,
            &[
                pg_sys::Oid::from((key >> 32) as u32).into(),
                pg_sys::Oid::from(key as u32).into(),
                backend::database().into(),
            ],
        )?;
        if rows.is_empty() {
            Ok(None)
        } else {
            rows.first().get_one::<i32>()
        }
    })?)
}

/// The active snapshot a runner pushed after the wait, popped when dropped.
struct FreshSnapshot(pg_sys::Snapshot);

impl Drop for FreshSnapshot {
    fn drop(&mut self) {
        // After an error, snapshots of the failed statement may lie above ours; (sub)transaction
        // abort unwinds the whole stack, so only our own is popped, and only when on top.
        // SAFETY: reads and pops the active snapshot stack of this backend.
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
