//! The verbs that change what is applied: `up`, `apply`, `down`, `down_to`, `revert` and
//! `baseline`. What they pick is `select`; how one body runs is `execute`; how a
//! non-transactional migration runs, statement by statement, is `nontransactional`.

pub mod execute;
mod nontransactional;
pub mod select;

use std::collections::HashMap;

use pgrx::prelude::*;

use crate::call::Call;
use crate::error::{ErrorParts, MigrateError};
use crate::gucs::{self, Snapshots};
use crate::leftovers::SessionState;
use crate::place::{Body, Lane, Place, Project};
use crate::postgres::lock::{self, LockScope};
use crate::postgres::transaction::{self, Committing};
use crate::store::{self, Event, Migration, Recorder};
use crate::tenants;
use crate::text::counted;
use execute::{DeferredChecks, Executor};
use select::Revert;

/// One history a verb works on, and what it picked there: the project's own, or, in a project
/// that fans out over tenant schemas, one tenant's.
pub struct Stream {
    pub project: Project,
    pub migrations: Vec<Migration>,
}

/// What a verb works on: its call (holding the runner lock), what it picked in each history,
/// and the statements that record what happens.
pub struct Prepared {
    pub call: Call,
    pub streams: Vec<Stream>,
    /// How many of the first streams are canary tenants.
    pub canary: usize,
    pub recorder: Recorder,
}

impl Prepared {
    /// Whether the call fans out over tenant schemas.
    fn in_tenants(&self) -> bool {
        self.streams
            .first()
            .is_some_and(|stream| stream.project.tenant().is_some())
    }
}

/// The start every verb shares: the call (with the runner lock), then, as the owner and under
/// the snapshot taken after the wait, what `select` picks in each history of the project, and
/// statements to record what happens to them; `None` when there is nothing to do. A verb that
/// cannot wait without a snapshot does not wait for a non-transactional migration running in
/// another session. `direction` says whether it picks among pending migrations (`Up`) or
/// applied ones.
pub fn prepare(
    function: &'static str,
    project: Project,
    scope: LockScope,
    direction: Body,
    select: impl FnMut(&Project) -> Result<Vec<Migration>, MigrateError>,
) -> Result<Option<Prepared>, MigrateError> {
    picked(
        Call::locked_outside_lane(function, project, scope)?,
        direction,
        select,
    )
}

/// The start of `apply()` and `revert()`, which can wait without a snapshot: when a
/// non-transactional migration runs in another session, they let go of the runner lock,
/// commit, wait for it, and start again.
fn prepare_committing(
    function: &'static str,
    project: &Project,
    committing: &Committing,
    direction: Body,
    mut select: impl FnMut(&Project) -> Result<Vec<Migration>, MigrateError>,
) -> Result<Option<Prepared>, MigrateError> {
    loop {
        // A session-level lock: the commits that follow must not release it.
        let call = Call::locked(function, project.clone(), LockScope::Session)?;
        if lock::lane_holder()?.is_none() {
            return picked(call, direction, &mut select);
        }
        drop(call);
        committing.commit();
        lock::wait_for_lane()?;
    }
}

/// What `select` picks in each history of the call's project: its own, or each tenant's, in
/// the tenant set's order, resolved now. Picking among pending migrations, only the tenants
/// where something is pending are asked: a start-up with every tenant up to date reads the
/// books once, not once per tenant.
fn picked(
    mut call: Call,
    direction: Body,
    mut select: impl FnMut(&Project) -> Result<Vec<Migration>, MigrateError>,
) -> Result<Option<Prepared>, MigrateError> {
    let (projects, canary, due) = match tenants::resolve(&call)? {
        Some(set) => {
            let due = match direction {
                Body::Up => Some(
                    call.as_owner(|| store::tenants_with_pending(&call.project, &set.tenants))?,
                ),
                Body::Down => None,
            };
            let projects = set
                .tenants
                .iter()
                .map(|tenant| call.project.in_tenant(tenant))
                .collect();
            (projects, set.canary, due)
        }
        None => (vec![call.project.clone()], 0, None),
    };
    let streams = call.as_owner(|| {
        projects
            .into_iter()
            .map(|project| {
                let asked = due
                    .as_ref()
                    .is_none_or(|due| due.contains(project.tenant_key()));
                let migrations = if asked { select(&project)? } else { Vec::new() };
                Ok(Stream {
                    project,
                    migrations,
                })
            })
            .collect::<Result<Vec<Stream>, MigrateError>>()
    })?;
    call.end_snapshot();
    if streams.iter().all(|stream| stream.migrations.is_empty()) {
        return Ok(None);
    }
    let recorder = call.as_owner(Recorder::new)?;
    Ok(Some(Prepared {
        call,
        streams,
        canary,
        recorder,
    }))
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
        select::to_run_up(project, target)
    })
}

/// Runs the `direction` body of each migration `select` picks, in order, in the caller's
/// transaction, and records it applied or reverted: `up` and `down`. In a project that fans
/// out over tenant schemas, in each tenant in turn; a failure anywhere undoes them all.
fn in_one_transaction(
    function: &'static str,
    project: Project,
    direction: Body,
    select: impl FnMut(&Project) -> Result<Vec<Migration>, MigrateError>,
) -> Result<i32, MigrateError> {
    let Some(Prepared {
        mut call,
        streams,
        recorder,
        ..
    }) = prepare(function, project, LockScope::Transaction, direction, select)?
    else {
        return Ok(0);
    };
    for stream in &streams {
        refuse_non_transactional(function, direction, &stream.project, &stream.migrations)?;
    }
    let count = streams
        .iter()
        .map(|stream| stream.migrations.len())
        .sum::<usize>() as i32;
    // Noted once, for the bodies of every tenant and for releasing what a failed one took.
    let session = SessionState::capture()?;
    // With retries, the migrations run first without a savepoint each (see
    // Executor::run_unguarded): a lock timeout rolls them all back, and they run again with one
    // each, that migration from its second attempt on.
    let mut recorder = recorder;
    let mut tried = None;
    if gucs::lock_retries() > 0 {
        let first = transaction::subtransaction(|| {
            run_streams(
                &mut call,
                &streams,
                &session,
                direction,
                &recorder,
                Guard::None,
            )
        });
        if first.is_err() {
            session.release_after_failure()?;
        }
        match first {
            Err(MigrateError::BodyFailed { error, place })
                if error.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE =>
            {
                execute::pause_after_lock_timeout(&place, 1);
                let before = streams
                    .iter()
                    .flat_map(|stream| stream.migrations.iter().map(move |m| (stream, m)))
                    .take_while(|(stream, m)| {
                        stream.project != place.project || m.version != place.version
                    })
                    .count();
                if before > 0 {
                    notice!(
                        "{} run before it in this call rolled back with it and will run again first",
                        counted(before, "migration")
                    );
                }
                // What it noted went with the rollback.
                recorder = call.as_owner(Recorder::new)?;
                tried = Some(place);
            }
            other => return other.map(|()| count),
        }
    }
    run_streams(
        &mut call,
        &streams,
        &session,
        direction,
        &recorder,
        Guard::Retries(tried.as_ref()),
    )?;
    Ok(count)
}

/// How `run_streams` guards each body.
#[derive(Clone, Copy)]
enum Guard<'a> {
    /// Not at all: the caller rolls back whatever fails (`Executor::run_unguarded`).
    None,
    /// With `Executor::run`'s subtransaction and retries, while `migrate.lock_retries` allows
    /// them; the migration at the place, if any, had one attempt already.
    Retries(Option<&'a Place>),
}

/// Runs the `direction` body of each migration of `streams`, in order, in the caller's
/// transaction, and records it, then closes the recorder; `session` is the session as the call
/// found it.
fn run_streams(
    call: &mut Call,
    streams: &[Stream],
    session: &SessionState,
    direction: Body,
    recorder: &Recorder,
    guard: Guard,
) -> Result<(), MigrateError> {
    for stream in streams {
        call.project = stream.project.clone();
        let executor = Executor::found(call, session);
        for migration in &stream.migrations {
            let deferred = DeferredChecks::UnlessRegisteredByAnother;
            let ran = match guard {
                Guard::None => executor.run_unguarded(migration, direction, deferred),
                Guard::Retries(tried) => {
                    let tried = tried.is_some_and(|place| {
                        place.project == stream.project && place.version == migration.version
                    });
                    // control run "the attempt before the savepoints not counted"
                    executor.run(migration, direction, deferred, i32::from(tried))
                }
            };
            let ran = match direction {
                Body::Up => ran.map_err(enum_value_not_committed)?,
                Body::Down => ran?,
            };
            record(call, recorder, migration, direction, ran)?;
        }
    }
    call.as_owner(|| recorder.close())
}

/// Records that the `direction` body of `migration` ran in `duration_ms`, as the owner, and says
/// so: applied, reverted, or (a repeatable migration) reapplied. Under `migrate.snapshots =
/// each`, the record is written and the catalog stored now.
fn record(
    call: &Call,
    recorder: &Recorder,
    migration: &Migration,
    direction: Body,
    duration_ms: f64,
) -> Result<(), MigrateError> {
    let (project, role) = (&call.project, &call.role);
    let done = match direction {
        Body::Up if migration.repeatable => {
            call.as_owner(|| recorder.reapplied(project, migration, role, duration_ms))?;
            "reapplied"
        }
        Body::Up => {
            call.as_owner(|| recorder.applied(project, migration, role, duration_ms, Event::Up))?;
            "applied"
        }
        Body::Down => {
            call.as_owner(|| recorder.reverted(project, migration, role, duration_ms))?;
            "reverted"
        }
    };
    if gucs::snapshots() == Snapshots::Each {
        call.as_owner(|| recorder.close())?;
    }
    report(call, migration, done, duration_ms);
    Ok(())
}

/// Records as `record` does, writes what it recorded, and commits: `apply()` and `revert()`
/// commit each migration with its record. The catalog is stored later, once for the migrations
/// the call runs in a row (see `one_at_a_time`): reading it costs more than a small migration.
fn record_and_commit(
    call: &Call,
    recorder: &Recorder,
    migration: &Migration,
    direction: Body,
    duration_ms: f64,
    committing: &Committing,
) -> Result<(), MigrateError> {
    record(call, recorder, migration, direction, duration_ms)?;
    call.as_owner(|| recorder.write())?;
    committing.commit();
    Ok(())
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

/// Refuses a call that runs in one transaction when it would run non-transactional
/// migrations, before it runs anything.
fn refuse_non_transactional(
    function: &'static str,
    body: Body,
    project: &Project,
    migrations: &[Migration],
) -> Result<(), MigrateError> {
    let versions: Vec<String> = migrations
        .iter()
        .filter(|migration| migration.lane == Lane::NonTransactional)
        .map(|migration| migration.version.clone())
        .collect();
    if versions.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::NonTransactional {
            function,
            body,
            project: project.clone(),
            versions,
        })
    }
}

/// `CALL migrate.apply()`: applies like `up()`, but commits after each migration, and runs
/// non-transactional ones statement by statement. Inside a transaction block (`may_commit`
/// false) nothing can commit, and it works as `up()` does.
pub fn apply(
    project: Project,
    target: Option<&str>,
    may_commit: bool,
) -> Result<i32, MigrateError> {
    const FUNCTION: &str = "migrate.apply()";
    if !may_commit {
        return up(FUNCTION, project, target);
    }
    one_at_a_time(FUNCTION, project, Body::Up, |project, _| {
        select::to_run_up(project, target)
    })
}

/// `CALL migrate.revert()`: reverts like `down()`, but commits after each migration, and runs
/// the down bodies of non-transactional ones statement by statement.
pub fn revert(project: Project, steps: i32, may_commit: bool) -> Result<i32, MigrateError> {
    const FUNCTION: &str = "migrate.revert()";
    if !may_commit {
        return down(FUNCTION, project, Revert::Last(steps));
    }
    one_at_a_time(FUNCTION, project, Body::Down, |project, done| {
        select::to_revert(project, Revert::Last(steps - done))
    })
}

/// Runs the `direction` body of what `select` picks (given how many are done in that history),
/// committing after each migration: a failing one is rolled back alone, recorded as failed, and
/// raised. After a non-transactional migration, which lets go of the runner lock while it
/// runs, the lock is taken again and the rest picked anew.
///
/// In a project that fans out over tenant schemas, a tenant whose migration fails stops there,
/// and the others go on; the failures are raised together at the end. When a canary tenant
/// fails, the tenants after the canaries are not started.
fn one_at_a_time(
    function: &'static str,
    project: Project,
    direction: Body,
    select: impl Fn(&Project, i32) -> Result<Vec<Migration>, MigrateError>,
) -> Result<i32, MigrateError> {
    let committing = Committing::connect();
    // Nothing of the CALL's snapshot while waiting: a concurrent index build would wait for it.
    committing.commit();
    // How many are done in each history (by tenant), and the tenants that failed.
    let mut done: HashMap<String, i32> = HashMap::new();
    let mut failures: Vec<(String, ErrorParts)> = Vec::new();
    let mut tenants = 0;
    let mut not_started = 0;
    loop {
        let Some(prepared) =
            prepare_committing(function, &project, &committing, direction, |project| {
                let tenant = project.tenant_key();
                if failures.iter().any(|(failed, _)| failed == tenant) {
                    return Ok(Vec::new());
                }
                select(project, done.get(tenant).copied().unwrap_or(0))
            })?
        else {
            break;
        };
        let in_tenants = prepared.in_tenants();
        let Prepared {
            mut call,
            streams,
            canary,
            recorder,
        } = prepared;
        if in_tenants {
            tenants = streams.len();
            refuse_lane_in_tenants(function, &call.project, &streams)?;
        }
        let mut lane_ran = false;
        let mut streams = streams.into_iter().enumerate();
        'streams: while let Some((position, stream)) = streams.next() {
            if position == canary && !failures.is_empty() {
                not_started = std::iter::once((position, stream))
                    .chain(streams.by_ref())
                    .filter(|(_, stream)| !stream.migrations.is_empty())
                    .count();
                break;
            }
            call.project = stream.project;
            let tenant = call.project.tenant_key().to_owned();
            let executor = Executor::new(&call);
            for migration in &stream.migrations {
                if migration.lane == Lane::NonTransactional {
                    drop(executor);
                    // The catalog the migrations before it left: its statements commit one by
                    // one, and may stop half-way.
                    call.as_owner(|| recorder.close())?;
                    nontransactional::run(&mut call, &committing, &recorder, migration, direction)?;
                    *done.entry(tenant).or_default() += 1;
                    lane_ran = true;
                    break 'streams;
                }
                // The subtransaction rolls a failed migration back alone, so that its failure
                // can be recorded and committed before the error is raised.
                match executor.run_alone(migration, direction, DeferredChecks::AtBodyEnd) {
                    Ok(duration_ms) => {
                        record_and_commit(
                            &call,
                            &recorder,
                            migration,
                            direction,
                            duration_ms,
                            &committing,
                        )?;
                        *done.entry(tenant.clone()).or_default() += 1;
                    }
                    Err(error) => {
                        let error = ErrorParts::from(error);
                        call.as_owner(|| {
                            // The catalog the migrations before it left, kept with its failure.
                            recorder.close()?;
                            store::record_failed(&call.project, migration, &call.role, &error, None)
                        })?;
                        committing.commit();
                        if !in_tenants {
                            return Err(MigrateError::Server(error));
                        }
                        failures.push((tenant, error));
                        continue 'streams;
                    }
                }
            }
        }
        // One snapshot of the catalog for the migrations run in a row, not one per commit.
        call.as_owner(|| recorder.close())?;
        committing.commit();
        if !lane_ran {
            break;
        }
    }
    if failures.is_empty() {
        return Ok(done.values().sum());
    }
    Err(MigrateError::TenantsFailed {
        project,
        failures,
        tenants,
        not_started,
    })
}

/// Refuses the statements of non-transactional migrations in tenants, before anything runs:
/// their journal and the cleanup after an interruption know one schema.
fn refuse_lane_in_tenants(
    function: &'static str,
    project: &Project,
    streams: &[Stream],
) -> Result<(), MigrateError> {
    let lane = streams
        .iter()
        .flat_map(|stream| &stream.migrations)
        .any(|migration| migration.lane == Lane::NonTransactional);
    if lane {
        Err(MigrateError::NotInTenants {
            function,
            project: project.clone(),
            what: "run non-transactional migrations",
        })
    } else {
        Ok(())
    }
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
    let Some(prepared) = prepare(
        "migrate.baseline()",
        project,
        LockScope::Transaction,
        Body::Up,
        |project| select::pending(project, Some(target)),
    )?
    else {
        return Ok(0);
    };
    mark_applied(prepared, Event::Baseline)
}

/// Records what `prepared` picked applied without running it, as `event`s, in each history.
pub fn mark_applied(prepared: Prepared, event: Event) -> Result<i32, MigrateError> {
    let Prepared {
        mut call,
        streams,
        recorder,
        ..
    } = prepared;
    let mut count = 0;
    for stream in streams {
        call.project = stream.project;
        for migration in &stream.migrations {
            call.as_owner(|| recorder.applied(&call.project, migration, &call.role, 0.0, event))?;
        }
        count += stream.migrations.len();
    }
    call.as_owner(|| recorder.close())?;
    notice!(
        "{} marked applied without being run",
        counted(count, "migration")
    );
    Ok(count as i32)
}
