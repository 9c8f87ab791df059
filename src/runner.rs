//! Applying and reverting: the loops of `up`, `down` and `down_to`, and running one body.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use pgrx::prelude::*;

use crate::error::{Body, MigrateError, Place, Position, ServerError};
use crate::parse::{self, Statement};
use crate::session::{self, BodyRunning};
use crate::store::{self, Migration, Recorder};
use crate::{gucs, version};

/// What every runner does first: refuse nesting and snapshot-bound isolation levels, find who
/// acts, and wait for the runner lock before reading any state.
struct Run<'a> {
    project: &'a str,
    owner: pg_sys::Oid,
    role: String,
    _snapshot: session::FreshSnapshot,
}

impl<'a> Run<'a> {
    fn start(function: &'static str, project: &'a str) -> Result<Self, MigrateError> {
        session::refuse_nested(function)?;
        session::require_read_committed(function)?;
        version::check_project(project)?;
        let owner = session::extension_owner()?;
        let (_, role) = session::current_role();
        let snapshot = session::lock_runner();
        Ok(Run {
            project,
            owner,
            role,
            _snapshot: snapshot,
        })
    }

    fn as_owner<R>(&self, f: impl FnOnce() -> Result<R, MigrateError>) -> Result<R, MigrateError> {
        session::as_owner(self.owner, f)
    }

    fn target_key(&self, target: &str) -> Result<Vec<u8>, MigrateError> {
        store::version_key(self.project, target)?.ok_or_else(|| MigrateError::UnknownVersion {
            project: self.project.to_owned(),
            version: target.to_owned(),
        })
    }

    fn place(&self, migration: &Migration, body: Body) -> Place {
        Place {
            project: self.project.to_owned(),
            version: migration.version.clone(),
            name: migration.name.clone(),
            body,
            position: Position::Whole,
        }
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

/// `migrate.up()`: applies the pending migrations of `project` up to `target`, in version order.
pub fn up(project: &str, target: Option<&str>) -> Result<i32, MigrateError> {
    let run = Run::start("migrate.up()", project)?;
    let pending = run.as_owner(|| {
        let up_to = target.map(|target| run.target_key(target)).transpose()?;
        let pending = store::pending(project, up_to.as_deref())?;
        if !gucs::ALLOW_OUT_OF_ORDER.get() {
            refuse_out_of_order(project, &pending)?;
        }
        Ok(pending)
    })?;
    if pending.is_empty() {
        return Ok(0);
    }
    let recorder = run.as_owner(Recorder::new)?;
    for migration in &pending {
        let duration_ms = run_body(&run.place(migration, Body::Up), migration)?;
        run.as_owner(|| recorder.applied(project, migration, &run.role, duration_ms))?;
        run.report(migration, "applied", duration_ms);
    }
    Ok(pending.len() as i32)
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

/// `migrate.down()`: reverts the `steps` most recently applied migrations of `project`.
pub fn down(project: &str, steps: i32) -> Result<i32, MigrateError> {
    if steps < 0 {
        return Err(MigrateError::NegativeSteps { steps });
    }
    let run = Run::start("migrate.down()", project)?;
    revert(&run, |_| {
        store::applied_newest_first(project, None, Some(i64::from(steps)))
    })
}

/// `migrate.down_to()`: reverts every applied migration of `project` above version `target`.
pub fn down_to(project: &str, target: &str) -> Result<i32, MigrateError> {
    let run = Run::start("migrate.down_to()", project)?;
    revert(&run, |run| {
        let above = run.target_key(target)?;
        store::applied_newest_first(project, Some(&above), None)
    })
}

/// Reverts the migrations `select` picks, newest first, after checking that each has a down
/// body, so that a missing one stops the call before anything is reverted.
fn revert(
    run: &Run<'_>,
    select: impl FnOnce(&Run<'_>) -> Result<Vec<Migration>, MigrateError>,
) -> Result<i32, MigrateError> {
    let migrations = run.as_owner(|| select(run))?;
    if migrations.is_empty() {
        return Ok(0);
    }
    let without_down: Vec<String> = migrations
        .iter()
        .filter(|m| m.body.is_none())
        .map(|m| m.version.clone())
        .collect();
    if !without_down.is_empty() {
        return Err(MigrateError::MissingDownBody {
            project: run.project.to_owned(),
            versions: without_down,
        });
    }
    let recorder = run.as_owner(Recorder::new)?;
    for migration in &migrations {
        let duration_ms = run_body(&run.place(migration, Body::Down), migration)?;
        run.as_owner(|| recorder.reverted(run.project, migration, &run.role, duration_ms))?;
        run.report(migration, "reverted", duration_ms);
    }
    Ok(migrations.len() as i32)
}

/// Runs one body as its registrant, statement by statement, and returns its duration in ms.
fn run_body(place: &Place, migration: &Migration) -> Result<f64, MigrateError> {
    let body = migration.body.as_deref().unwrap_or_default();
    let statements = parse::statements(body, place)?;
    let registrant = session::role_oid(&migration.registered_by).ok_or_else(|| {
        MigrateError::UnknownRegistrant {
            role: migration.registered_by.clone(),
            place: place.clone(),
        }
    })?;
    let started = Instant::now();
    let _running = BodyRunning::start();
    session::as_registrant(registrant, || execute(body, &statements, place))?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// Executes the statements and, when one fails, returns the server's error with the statement's
/// place added; the error then aborts the caller's transaction.
fn execute(body: &str, statements: &[Statement], place: &Place) -> Result<(), MigrateError> {
    let current = AtomicUsize::new(0);
    let failed_at = |index: usize| {
        let statement: &Statement = &statements[index];
        place.at(Position::Statement {
            number: index + 1,
            line: statement.line,
        })
    };
    PgTryBuilder::new(AssertUnwindSafe(|| {
        for (index, statement) in statements.iter().enumerate() {
            current.store(index, Ordering::Relaxed);
            Spi::run(&body[statement.start..statement.end]).map_err(|error| {
                MigrateError::BodyFailed {
                    error: ServerError {
                        code: PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                        message: error.to_string(),
                        detail: None,
                        hint: None,
                    },
                    place: failed_at(index),
                }
            })?;
        }
        Ok(())
    }))
    .catch_others(|caught| {
        Err(MigrateError::BodyFailed {
            error: ServerError::from(&caught),
            place: failed_at(current.load(Ordering::Relaxed)),
        })
    })
    .execute()
}
