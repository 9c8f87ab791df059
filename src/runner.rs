//! Applying and reverting: the loops of `up`, `down` and `down_to`, and running one body.

use std::cell::OnceCell;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use pgrx::prelude::*;

use crate::error::{Body, ErrorParts, MigrateError, Place, Position, counted};
use crate::leftovers::SessionState;
use crate::parse;
use crate::session::{self, BodyRunning, FreshSnapshot, LockScope, SessionRunnerLock};
use crate::store::{self, Migration, Recorder};
use crate::{gucs, version};

/// What every runner does first: refuse nesting and snapshot-bound isolation levels, find who
/// acts, and wait for the runner lock before reading any state. The snapshot taken after the
/// wait is for the reads that follow; `apply` drops it before its first commit.
pub(crate) struct Run<'a> {
    pub project: &'a str,
    owner: pg_sys::Oid,
    pub role: String,
    /// What the session holds that no body may add to, noted before the first body runs: a call
    /// with nothing to do (every start-up after the first) never looks.
    session: OnceCell<SessionState>,
    _session_lock: Option<SessionRunnerLock>,
}

impl<'a> Run<'a> {
    pub fn start(
        function: &'static str,
        project: &'a str,
        scope: LockScope,
    ) -> Result<(Self, FreshSnapshot), MigrateError> {
        session::refuse_nested(function)?;
        session::require_read_committed(function)?;
        version::check_project(project)?;
        let owner = session::extension_owner()?;
        let (_, role) = session::current_role();
        let snapshot = session::lock_runner(scope)?;
        let session_lock = matches!(scope, LockScope::Session).then(SessionRunnerLock::held);
        let run = Run {
            project,
            owner,
            role,
            session: OnceCell::new(),
            _session_lock: session_lock,
        };
        Ok((run, snapshot))
    }

    pub fn as_owner<R>(
        &self,
        f: impl FnOnce() -> Result<R, MigrateError>,
    ) -> Result<R, MigrateError> {
        session::as_owner(self.owner, f)
    }

    pub fn place(&self, migration: &Migration, body: Body) -> Place {
        Place::whole(self.project, &migration.version, &migration.name, body)
    }

    /// Runs the `body` of `migration` in the caller's transaction, with retries, and returns
    /// its duration in ms.
    pub fn run_body(
        &self,
        migration: &Migration,
        body: Body,
        deferred: DeferredChecks,
    ) -> Result<f64, MigrateError> {
        run_with_retries(
            &self.place(migration, body),
            migration,
            deferred,
            self.session()?,
        )
    }

    /// The session as the call found it; the runner's own work before the first body changes
    /// none of what it holds.
    fn session(&self) -> Result<&SessionState, MigrateError> {
        if let Some(session) = self.session.get() {
            return Ok(session);
        }
        let captured = SessionState::capture()?;
        Ok(self.session.get_or_init(|| captured))
    }

    /// The same in a subtransaction of its own: a body that fails is rolled back alone.
    pub fn run_body_alone(
        &self,
        migration: &Migration,
        body: Body,
        deferred: DeferredChecks,
    ) -> Result<f64, MigrateError> {
        let before = self.session()?;
        let result = session::subtransaction(|| self.run_body(migration, body, deferred));
        if result.is_err() {
            before.release_after_failure()?;
        }
        result
    }

    fn report(&self, migration: &Migration, done: &str, duration_ms: f64) {
        let project = if self.project == crate::DEFAULT_PROJECT {
            String::new()
        } else {
            format!(" of project \"{}\"", self.project)
        };
        notice!(
            "migration \"{}\" ({}){project} {done} in {duration_ms:.1} ms",
            migration.version,
            migration.name
        );
    }
}

/// The start every runner that changes state shares: the lock, then (as the owner, under the
/// snapshot taken after the wait) the migrations `select` picks, and statements to record what
/// happens to them; `None` when there is nothing to do.
pub(crate) fn prepare<'a>(
    function: &'static str,
    project: &'a str,
    scope: LockScope,
    select: impl FnOnce() -> Result<Vec<Migration>, MigrateError>,
) -> Result<Option<(Run<'a>, Vec<Migration>, Recorder)>, MigrateError> {
    let (run, snapshot) = Run::start(function, project, scope)?;
    let migrations = run.as_owner(select)?;
    // Only the reads above need it; an active snapshot would also stop apply()'s commits.
    drop(snapshot);
    if migrations.is_empty() {
        return Ok(None);
    }
    let recorder = run.as_owner(Recorder::new)?;
    Ok(Some((run, migrations, recorder)))
}

/// `migrate.up()`: applies the pending migrations of `project` up to `target`, in version order,
/// in the caller's transaction.
pub fn up(project: &str, target: Option<&str>) -> Result<i32, MigrateError> {
    up_in_one_transaction("migrate.up()", project, target)
}

fn up_in_one_transaction(
    function: &'static str,
    project: &str,
    target: Option<&str>,
) -> Result<i32, MigrateError> {
    let Some((run, pending, recorder)) =
        prepare(function, project, LockScope::Transaction, || {
            to_apply(project, target)
        })?
    else {
        return Ok(0);
    };
    for migration in &pending {
        let duration_ms = run
            .run_body(
                migration,
                Body::Up,
                DeferredChecks::UnlessRegisteredByAnother,
            )
            .map_err(with_enum_hint)?;
        run.as_owner(|| recorder.applied(project, migration, &run.role, duration_ms))?;
        run.report(migration, "applied", duration_ms);
    }
    Ok(pending.len() as i32)
}

/// `CALL migrate.apply()`: applies like `up()`, but commits after each migration. Inside a
/// transaction block (`nonatomic` false) nothing can commit, and it works as `up()` does.
pub fn apply(project: &str, target: Option<&str>, nonatomic: bool) -> Result<i32, MigrateError> {
    const FUNCTION: &str = "migrate.apply()";
    if !nonatomic {
        return up_in_one_transaction(FUNCTION, project, target);
    }
    // SAFETY: a top-level CALL may commit through a nonatomic SPI connection; pgrx's own
    // (atomic) connections nest inside it. On error, abort processing closes it.
    unsafe { pg_sys::SPI_connect_ext(pg_sys::SPI_OPT_NONATOMIC as i32) };
    let applied = apply_committing(FUNCTION, project, target);
    unsafe { pg_sys::SPI_finish() };
    applied
}

fn apply_committing(
    function: &'static str,
    project: &str,
    target: Option<&str>,
) -> Result<i32, MigrateError> {
    // A session-level lock: the commits below must not release it.
    let Some((run, pending, recorder)) = prepare(function, project, LockScope::Session, || {
        to_apply(project, target)
    })?
    else {
        return Ok(0);
    };
    for migration in &pending {
        // The subtransaction rolls a failed migration back alone, so that its failure can be
        // recorded and committed before the error is raised.
        match run.run_body_alone(migration, Body::Up, DeferredChecks::AtBodyEnd) {
            Ok(duration_ms) => {
                run.as_owner(|| recorder.applied(project, migration, &run.role, duration_ms))?;
                commit();
                run.report(migration, "applied", duration_ms);
            }
            Err(error) => {
                let error = ErrorParts::from(error);
                run.as_owner(|| store::record_failed(project, migration, &run.role, &error))?;
                commit();
                return Err(MigrateError::Server(error));
            }
        }
    }
    Ok(pending.len() as i32)
}

fn commit() {
    // SAFETY: only called from apply's nonatomic SPI connection, outside any subtransaction and
    // with no snapshot of ours active; a new transaction starts at once.
    unsafe { pg_sys::SPI_commit() };
}

/// The registered version `target` of `project`, as a version key.
fn target_key(project: &str, target: &str) -> Result<Vec<u8>, MigrateError> {
    store::version_key(project, target)?.ok_or_else(|| MigrateError::UnknownVersion {
        project: project.to_owned(),
        version: target.to_owned(),
    })
}

/// What `up()` and `apply()` apply: the pending migrations up to `target`, in version order,
/// unless some are older than an applied one and out-of-order is not allowed.
pub fn to_apply(project: &str, target: Option<&str>) -> Result<Vec<Migration>, MigrateError> {
    let up_to = target
        .map(|target| target_key(project, target))
        .transpose()?;
    let pending = store::pending(project, up_to.as_deref())?;
    if !gucs::ALLOW_OUT_OF_ORDER.get() {
        refuse_out_of_order(project, &pending)?;
    }
    Ok(pending)
}

/// Which applied migrations to revert.
#[derive(Clone, Copy)]
pub enum Revert<'a> {
    /// The most recently applied ones (`down`).
    Last(i32),
    /// Those above a version (`down_to`).
    Above(&'a str),
}

/// What `down()` and `down_to()` revert, most recently applied first, once it is certain that
/// each has a down body, so that a missing one stops the call before anything is reverted.
pub fn to_revert(project: &str, which: Revert<'_>) -> Result<Vec<Migration>, MigrateError> {
    let migrations = match which {
        Revert::Last(steps) if steps < 0 => return Err(MigrateError::NegativeSteps { steps }),
        Revert::Last(steps) => store::applied_newest_first(project, None, Some(i64::from(steps)))?,
        Revert::Above(target) => {
            store::applied_newest_first(project, Some(&target_key(project, target)?), None)?
        }
    };
    let without_down: Vec<String> = migrations
        .iter()
        .filter(|m| m.body.is_none())
        .map(|m| m.version.clone())
        .collect();
    if without_down.is_empty() {
        Ok(migrations)
    } else {
        Err(MigrateError::MissingDownBody {
            project: project.to_owned(),
            versions: without_down,
        })
    }
}

/// A value an earlier migration added to an enum is unusable until that transaction commits,
/// which in one `up()` it has not.
fn with_enum_hint(error: MigrateError) -> MigrateError {
    match error {
        MigrateError::BodyFailed { mut error, place }
            if error.code == PgSqlErrorCode::ERRCODE_UNSAFE_NEW_ENUM_VALUE_USAGE =>
        {
            error.hint = Some(
                "A value added to an enum can be used only after the transaction that added it commits: apply with CALL migrate.apply() (outside a transaction block), which commits after each migration.".to_owned(),
            );
            MigrateError::BodyFailed { error, place }
        }
        other => other,
    }
}

fn refuse_out_of_order(project: &str, pending: &[Migration]) -> Result<(), MigrateError> {
    let Some((highest, highest_key)) = store::highest_applied(project)? else {
        return Ok(());
    };
    let older: Vec<String> = pending
        .iter()
        .filter(|migration| version::sort_key(&migration.version) < highest_key)
        .map(|migration| migration.version.clone())
        .collect();
    if older.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::OutOfOrder {
            project: project.to_owned(),
            versions: older,
            highest,
        })
    }
}

/// `migrate.down()` and `migrate.down_to()`: reverts applied migrations of `project`, most
/// recently applied first.
pub fn down(function: &'static str, project: &str, which: Revert<'_>) -> Result<i32, MigrateError> {
    let Some((run, migrations, recorder)) =
        prepare(function, project, LockScope::Transaction, || {
            to_revert(project, which)
        })?
    else {
        return Ok(0);
    };
    for migration in &migrations {
        let duration_ms = run.run_body(
            migration,
            Body::Down,
            DeferredChecks::UnlessRegisteredByAnother,
        )?;
        run.as_owner(|| recorder.reverted(project, migration, &run.role, duration_ms))?;
        run.report(migration, "reverted", duration_ms);
    }
    Ok(migrations.len() as i32)
}

/// `migrate.baseline()`: marks the pending migrations of `project` up to `target` applied
/// without running them, for a database whose schema already has them.
pub fn baseline(project: &str, target: &str) -> Result<i32, MigrateError> {
    let Some((run, pending, recorder)) = prepare(
        "migrate.baseline()",
        project,
        LockScope::Transaction,
        || store::pending(project, Some(&target_key(project, target)?)),
    )?
    else {
        return Ok(0);
    };
    mark_applied(&run, &recorder, &pending, "baseline")
}

/// Records `migrations` applied without running them, as `event`s.
pub(crate) fn mark_applied(
    run: &Run<'_>,
    recorder: &Recorder,
    migrations: &[Migration],
    event: &str,
) -> Result<i32, MigrateError> {
    for migration in migrations {
        run.as_owner(|| recorder.marked_applied(run.project, migration, &run.role, event))?;
    }
    notice!(
        "{} marked applied without being run",
        counted(migrations.len(), "migration")
    );
    Ok(migrations.len() as i32)
}

/// The first pause before another attempt of a migration that hit `migrate.lock_timeout`; each
/// further pause doubles, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: u64 = 100;
const MAX_BACKOFF_MS: u64 = 5_000;

/// Runs one body, and again (in a subtransaction, after a pause) while a statement of it fails
/// to get a lock within `migrate.lock_timeout` and `migrate.lock_retries` allows. Returns the
/// duration of the successful attempt in ms. `before` is the session as the call found it.
fn run_with_retries(
    place: &Place,
    migration: &Migration,
    deferred: DeferredChecks,
    before: &SessionState,
) -> Result<f64, MigrateError> {
    let retries = gucs::LOCK_RETRIES.get();
    let attempts = retries + 1;
    let mut backoff = FIRST_BACKOFF_MS;
    for attempt in 1.. {
        // Without retries the caller's transaction is all there is to roll back.
        let result = if retries == 0 {
            run_body(place, migration, deferred, before)
        } else {
            let result = session::subtransaction(|| run_body(place, migration, deferred, before));
            if result.is_err() {
                before.release_after_failure()?;
            }
            result
        };
        match result {
            Err(MigrateError::BodyFailed { error, place })
                if error.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE =>
            {
                let timeout_ms = gucs::LOCK_TIMEOUT.get();
                if attempt >= attempts {
                    return Err(MigrateError::LockTimeout {
                        error,
                        place,
                        attempts,
                        timeout_ms,
                    });
                }
                notice!(
                    "migration \"{}\" ({}) could not get a lock within {timeout_ms} ms (attempt {attempt} of {attempts}); trying again in {backoff} ms",
                    place.version,
                    place.name
                );
                session::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF_MS);
            }
            other => return other,
        }
    }
    unreachable!("the loop returns on the last attempt")
}

/// When the deferred constraint checks (and other deferred triggers) of a body run.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum DeferredChecks {
    /// At the caller's commit, as in plain SQL, when the caller is the body's registrant;
    /// otherwise at the end of the body, as the registrant: a deferred trigger fires as the
    /// role current when it fires, which at commit would be the caller.
    UnlessRegisteredByAnother,
    /// At the end of every body: `apply()` commits each migration, and a violation then fails
    /// the migration with its place instead of the commit.
    AtBodyEnd,
}

/// Runs one body as its registrant, statement by statement, makes sure it left nothing in the
/// session that `before` lacks, and returns its duration in ms.
fn run_body(
    place: &Place,
    migration: &Migration,
    deferred: DeferredChecks,
    before: &SessionState,
) -> Result<f64, MigrateError> {
    let body = migration.body.as_deref().unwrap_or_default();
    let mut statements: Vec<(&str, Position)> = parse::statements(body, place)?
        .iter()
        .enumerate()
        .map(|(index, statement)| {
            let position = Position::Statement {
                number: index + 1,
                line: statement.line,
            };
            (&body[statement.start..statement.end], position)
        })
        .collect();
    let registrant = session::role_oid(&migration.registered_by).ok_or_else(|| {
        MigrateError::UnknownRegistrant {
            role: migration.registered_by.clone(),
            place: place.clone(),
        }
    })?;
    // SAFETY: reads this backend's current user id.
    let caller = unsafe { pg_sys::GetUserId() };
    if deferred == DeferredChecks::AtBodyEnd || registrant != caller {
        statements.push(("SET CONSTRAINTS ALL IMMEDIATE", Position::DeferredChecks));
    }
    let started = Instant::now();
    {
        let _running = BodyRunning::start();
        session::as_registrant(registrant, || execute(&statements, place))?;
    }
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    before.check(place)?;
    Ok(duration_ms)
}

/// Executes the statements and, when one fails, returns the server's error with the statement's
/// place added. The caller then rolls the failed work back: the subtransaction around it, or,
/// by raising the error, the whole transaction.
fn execute(statements: &[(&str, Position)], place: &Place) -> Result<(), MigrateError> {
    let current = AtomicUsize::new(0);
    let failed_at = |index: usize| place.at(statements[index].1);
    PgTryBuilder::new(AssertUnwindSafe(|| {
        for (index, (sql, _)) in statements.iter().enumerate() {
            current.store(index, Ordering::Relaxed);
            Spi::run(sql).map_err(|error| MigrateError::BodyFailed {
                error: ErrorParts {
                    code: PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    message: error.to_string(),
                    detail: None,
                    hint: None,
                },
                place: failed_at(index),
            })?;
        }
        Ok(())
    }))
    .catch_others(|caught| {
        Err(MigrateError::BodyFailed {
            error: ErrorParts::from(&caught),
            place: failed_at(current.load(Ordering::Relaxed)),
        })
    })
    .execute()
}
