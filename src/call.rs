//! What every SQL call that works on a project builds once: the checked project, who acts, the
//! extension's owner who keeps the books, and the runner lock when the call needs it.

use std::cell::Cell;

use pgrx::pg_sys;

use crate::error::MigrateError;
use crate::place::{Body, Place, Project};
use crate::postgres::lock::{self, LockScope, RunnerLock};
use crate::postgres::transaction;
use crate::postgres::{catalog, identity};

pub struct Call {
    pub project: Project,
    /// The role the caller acts as, and its name for the history.
    pub caller: pg_sys::Oid,
    pub role: String,
    owner: pg_sys::Oid,
    lock: Option<RunnerLock>,
}

impl Call {
    /// A call that registers, applies or reverts: refuses nesting and snapshot-bound isolation
    /// levels, finds who acts, and waits for the runner lock before reading any state, so that
    /// nothing changes between being read and being acted on. The snapshot taken after the wait
    /// serves the reads that follow, until `end_snapshot`.
    pub fn locked(
        function: &'static str,
        project: Project,
        scope: LockScope,
    ) -> Result<Self, MigrateError> {
        refuse_nested(function)?;
        if let Some(level) = transaction::snapshot_bound_isolation() {
            return Err(MigrateError::IsolationLevel { function, level });
        }
        let mut call = Call::reading(project);
        call.lock = Some(lock::lock_runner(scope)?);
        Ok(call)
    }

    /// `locked`, for a call that applies or reverts and cannot wait without holding a snapshot
    /// (a function, not `apply()`): refused while another session runs the statements of a
    /// non-transactional migration, which could be waiting for that snapshot.
    pub fn locked_outside_lane(
        function: &'static str,
        project: Project,
        scope: LockScope,
    ) -> Result<Self, MigrateError> {
        let call = Call::locked(function, project, scope)?;
        match lock::lane_holder()? {
            Some(holder) => Err(MigrateError::LaneBusy { function, holder }),
            None => Ok(call),
        }
    }

    /// A call that only reads, and so never waits for a running migration (`plan`), as
    /// `status()` does.
    pub fn reading(project: Project) -> Self {
        let owner = catalog::extension_owner();
        let (caller, role) = identity::current_role();
        Call {
            project,
            caller,
            role,
            owner,
            lock: None,
        }
    }

    /// Ends the snapshot taken after the wait: only the first reads need it, and an active
    /// snapshot would stop `apply()`'s commits. The runner lock stays held.
    pub fn end_snapshot(&mut self) {
        if let Some(lock) = &mut self.lock {
            lock.drop_snapshot();
        }
    }

    /// Lets go of the runner lock (a session-level one) before the call ends: a
    /// non-transactional migration runs under the lane's lock instead.
    pub fn release_lock(&mut self) {
        self.lock = None;
    }

    /// Runs `f` as the extension's owner: the bookkeeping (see `identity::as_owner`).
    pub fn as_owner<R>(
        &self,
        f: impl FnOnce() -> Result<R, MigrateError>,
    ) -> Result<R, MigrateError> {
        identity::as_owner(self.owner, f)
    }

    /// The whole `body` of migration `version` (`name`) of the call's project.
    pub fn place(&self, version: &str, name: &str, body: Body) -> Place {
        Place::whole(&self.project, version, name, body)
    }
}

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
