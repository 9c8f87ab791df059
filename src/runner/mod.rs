//! The verbs that change what is applied: `up`, `apply`, `down`, `down_to` and `baseline`.
//! What they pick is `select`; how one body runs is `execute`.

pub mod execute;
pub mod select;

use pgrx::prelude::*;

use crate::call::Call;
use crate::error::{ErrorParts, MigrateError};
use crate::place::{Body, Project};
use crate::postgres::lock::LockScope;
use crate::postgres::transaction::Committing;
use crate::store::{self, Event, Migration, Recorder};
use crate::text::counted;
use execute::{DeferredChecks, Executor};
use select::Revert;

/// The start every verb shares: the call (with the runner lock), then, as the owner and under
/// the snapshot taken after the wait, the migrations `select` picks, and statements to record
/// what happens to them; `None` when there is nothing to do.
pub fn prepare(
    function: &'static str,
    project: Project,
    scope: LockScope,
    select: impl FnOnce(&Project) -> Result<Vec<Migration>, MigrateError>,
) -> Result<Option<(Call, Vec<Migration>, Recorder)>, MigrateError> {
    let mut call = Call::locked(function, project, scope)?;
    let migrations = call.as_owner(|| select(&call.project))?;
    call.end_snapshot();
    if migrations.is_empty() {
        return Ok(None);
    }
    let recorder = call.as_owner(Recorder::new)?;
    Ok(Some((call, migrations, recorder)))
}

/// The NOTICE for each migration a verb ran.
fn report(call: &Call, migration: &Migration, done: &str, duration_ms: f64) {
    notice!(
        "migration \"{}\" ({}){} {done} in {duration_ms:.1} ms",
        migration.version,
        migration.name,
        call.project.mention("of")
    );
}

/// `migrate.up()`: applies the pending migrations of `project` up to `target`, in version order,
/// in the caller's transaction.
pub fn up(
    function: &'static str,
    project: Project,
    target: Option<&str>,
) -> Result<i32, MigrateError> {
    in_one_transaction(function, project, Body::Up, |project| {
        select::to_apply(project, target)
    })
}

/// Runs the `direction` body of each migration `select` picks, in order, in the caller's
/// transaction, and records it applied or reverted: `up` and `down`.
fn in_one_transaction(
    function: &'static str,
    project: Project,
    direction: Body,
    select: impl FnOnce(&Project) -> Result<Vec<Migration>, MigrateError>,
) -> Result<i32, MigrateError> {
    let Some((call, migrations, recorder)) =
        prepare(function, project, LockScope::Transaction, select)?
    else {
        return Ok(0);
    };
    let executor = Executor::new(&call);
    for migration in &migrations {
        let ran = executor.run(
            migration,
            direction,
            DeferredChecks::UnlessRegisteredByAnother,
        );
        let (project, role) = (&call.project, &call.role);
        match direction {
            Body::Up => {
                let duration_ms = ran.map_err(enum_value_not_committed)?;
                call.as_owner(|| recorder.applied(project, migration, role, duration_ms))?;
                report(&call, migration, "applied", duration_ms);
            }
            Body::Down => {
                let duration_ms = ran?;
                call.as_owner(|| recorder.reverted(project, migration, role, duration_ms))?;
                report(&call, migration, "reverted", duration_ms);
            }
        }
    }
    Ok(migrations.len() as i32)
}

/// A value an earlier migration added to an enum is unusable until that transaction commits,
/// which in one `up()` it has not.
fn enum_value_not_committed(error: MigrateError) -> MigrateError {
    match error {
        MigrateError::BodyFailed { error, place }
            if error.code == PgSqlErrorCode::ERRCODE_UNSAFE_NEW_ENUM_VALUE_USAGE =>
        {
            MigrateError::EnumValueNotCommitted { error, place }
        }
        other => other,
    }
}

/// `CALL migrate.apply()`: applies like `up()`, but commits after each migration. Inside a
/// transaction block (`may_commit` false) nothing can commit, and it works as `up()` does.
pub fn apply(
    project: Project,
    target: Option<&str>,
    may_commit: bool,
) -> Result<i32, MigrateError> {
    const FUNCTION: &str = "migrate.apply()";
    if !may_commit {
        return up(FUNCTION, project, target);
    }
    let committing = Committing::connect();
    // A session-level lock: the commits below must not release it.
    let Some((call, pending, recorder)) =
        prepare(FUNCTION, project, LockScope::Session, |project| {
            select::to_apply(project, target)
        })?
    else {
        return Ok(0);
    };
    let executor = Executor::new(&call);
    for migration in &pending {
        // The subtransaction rolls a failed migration back alone, so that its failure can be
        // recorded and committed before the error is raised.
        match executor.run_alone(migration, Body::Up, DeferredChecks::AtBodyEnd) {
            Ok(duration_ms) => {
                call.as_owner(|| {
                    recorder.applied(&call.project, migration, &call.role, duration_ms)
                })?;
                committing.commit();
                report(&call, migration, "applied", duration_ms);
            }
            Err(error) => {
                let error = ErrorParts::from(error);
                call.as_owner(|| {
                    store::record_failed(&call.project, migration, &call.role, &error)
                })?;
                committing.commit();
                return Err(MigrateError::Server(error));
            }
        }
    }
    Ok(pending.len() as i32)
}

/// `migrate.down()` and `migrate.down_to()`: reverts applied migrations of `project`, most
/// recently applied first.
pub fn down(
    function: &'static str,
    project: Project,
    which: Revert<'_>,
) -> Result<i32, MigrateError> {
    in_one_transaction(function, project, Body::Down, |project| {
        select::to_revert(project, which)
    })
}

/// `migrate.baseline()`: marks the pending migrations of `project` up to `target` applied
/// without running them, for a database whose schema already has them.
pub fn baseline(project: Project, target: &str) -> Result<i32, MigrateError> {
    let Some((call, pending, recorder)) = prepare(
        "migrate.baseline()",
        project,
        LockScope::Transaction,
        |project| select::pending(project, Some(target)),
    )?
    else {
        return Ok(0);
    };
    mark_applied(&call, &recorder, &pending, Event::Baseline)
}

/// Records `migrations` applied without running them, as `event`s.
pub fn mark_applied(
    call: &Call,
    recorder: &Recorder,
    migrations: &[Migration],
    event: Event,
) -> Result<i32, MigrateError> {
    for migration in migrations {
        call.as_owner(|| recorder.marked_applied(&call.project, migration, &call.role, event))?;
    }
    notice!(
        "{} marked applied without being run",
        counted(migrations.len(), "migration")
    );
    Ok(migrations.len() as i32)
}
