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
    // SAFETY: both functions take one int8 argument and return void.
    let take = || unsafe {
        // control run "no runner lock"
        pgrx::direct_function_call_as_datum(lock, &[RUNNER_LOCK_KEY.into_datum()]);
    };
    let (wait, bound) = runner_wait_bound();
    if wait == 0 {
        take();
    } else {
        // The wait is the server's own lock wait, bounded by lock_timeout, so waiting runners
        // show in pg_locks and take part in deadlock detection. A lock taken in a subtransaction
        // passes to the transaction when the subtransaction is kept.
        let waited = transaction::subtransaction(|| {
            identity::with_lock_timeout(wait, take);
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
                AND l.database OPERATOR(pg_catalog.=) $3
              LIMIT 1",
            None,
            &[
                pg_sys::Oid::from((RUNNER_LOCK_KEY >> 32) as u32).into(),
                pg_sys::Oid::from(RUNNER_LOCK_KEY as u32).into(),
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
