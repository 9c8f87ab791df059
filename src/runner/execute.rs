//! Running one body: as its registrant, statement by statement, again while it only failed to
//! get a lock in time, and with nothing of it left in the session afterwards.

use std::cell::OnceCell;
use std::ffi::CString;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::call::{BodyRunning, Call};
use crate::error::{ErrorParts, MigrateError};
use crate::gucs;
use crate::leftovers::SessionState;
use crate::parse;
use crate::place::{Body, Place, Position};
use crate::postgres::transaction::{self, Committing};
use crate::postgres::{backend, identity, top_level};
use crate::store::Migration;

/// When the deferred constraint checks (and other deferred triggers) of a body run.
#[derive(Clone, Copy, PartialEq)]
pub enum DeferredChecks {
    /// At the caller's commit, as in plain SQL, when the caller is the body's registrant;
    /// otherwise at the end of the body, as the registrant: a deferred trigger fires as the
    /// role current when it fires, which at commit would be the caller.
    UnlessRegisteredByAnother,
    /// At the end of every body: `apply()` commits each migration, and a violation then fails
    /// the migration with its place instead of the commit.
    AtBodyEnd,
}

/// Runs the bodies of one call, in one tenant when the call's project is in one.
pub struct Executor<'a> {
    call: &'a Call,
    /// The tenant's schema, quoted: the `search_path` of its bodies.
    search_path: Option<CString>,
    /// What the session holds that no body may add to, noted before the first body runs: a
    /// call with nothing to do (every start-up after the first) never looks.
    session: OnceCell<SessionState>,
}

impl<'a> Executor<'a> {
    pub fn new(call: &'a Call) -> Self {
        let search_path = call.project.tenant().map(|tenant| {
            CString::new(format!("\"{}\"", tenant.replace('"', "\"\"")))
                .expect("a schema name has no NUL")
        });
        Executor {
            call,
            search_path,
            session: OnceCell::new(),
        }
    }

    /// The same, with the session as the call found it noted already.
    pub fn found(call: &'a Call, session: &SessionState) -> Self {
        let executor = Executor::new(call);
        executor.session.get_or_init(|| session.clone());
        executor
    }

    /// Runs the `body` of `migration` in the caller's transaction, with retries, and returns
    /// its duration in ms. `failed` attempts of it were made already (see `run_unguarded`).
    pub fn run(
        &self,
        migration: &Migration,
        body: Body,
        deferred: DeferredChecks,
        failed: i32,
    ) -> Result<f64, MigrateError> {
        let place = self.call.place(&migration.version, &migration.name, body);
        // Without retries the caller's transaction is all there is to roll back.
        let retried = gucs::lock_retries() > 0;
        self.run_with_retries(failed, || {
            if retried {
                self.in_subtransaction(|| self.run_once(&place, migration, deferred))
            } else {
                self.run_once(&place, migration, deferred)
            }
        })
    }

    /// Runs the `body` of `migration` once, with no subtransaction of its own: a failure, a
    /// lock timeout included, is for the caller to roll back, and then to release the
    /// session-level advisory locks the body took, which no rollback does (nothing may look at
    /// the session before the rollback). A subtransaction per migration costs more than the
    /// bodies of small or DDL-heavy migrations (its end walks caches and locks that grow with
    /// every table the transaction creates), so `up()` and `down()` run them this way first, in
    /// one subtransaction of their own, and use `run` only once one of them has failed to get a
    /// lock in time.
    pub fn run_unguarded(
        &self,
        migration: &Migration,
        body: Body,
        deferred: DeferredChecks,
    ) -> Result<f64, MigrateError> {
        let place = self.call.place(&migration.version, &migration.name, body);
        self.run_once(&place, migration, deferred)
    }

    /// The same in a subtransaction of its own: a body that fails is rolled back alone.
    pub fn run_alone(
        &self,
        migration: &Migration,
        body: Body,
        deferred: DeferredChecks,
    ) -> Result<f64, MigrateError> {
        self.in_subtransaction(|| self.run(migration, body, deferred, 0))
    }

    /// Runs one statement `sql` of a non-transactional migration, at `place`, in a
    /// subtransaction of its own, with its deferred checks at its end; the caller commits it.
    pub fn run_statement(
        &self,
        migration: &Migration,
        place: &Place,
        sql: &str,
    ) -> Result<f64, MigrateError> {
        let statements = [
            (sql, place.position),
            ("SET CONSTRAINTS ALL IMMEDIATE", Position::DeferredChecks),
        ];
        self.run_with_retries(0, || {
            self.in_subtransaction(|| self.run_statements(place, migration, &statements))
        })
    }

    /// Runs one statement `sql` of a non-transactional migration, at `place`, at top level
    /// (see `top_level::run`): committed when it succeeds, rolled back when it fails.
    pub fn run_top_level(
        &self,
        migration: &Migration,
        place: &Place,
        sql: &str,
        committing: &Committing,
    ) -> Result<f64, MigrateError> {
        let before = self.session()?;
        let registrant = self.registrant(migration, place)?;
        self.run_with_retries(0, || {
            let started = Instant::now();
            {
                let _running = BodyRunning::start();
                top_level::run(sql, registrant, gucs::lock_timeout_ms(), committing).map_err(
                    |error| MigrateError::BodyFailed {
                        error,
                        place: place.clone(),
                    },
                )?;
            }
            let duration_ms = milliseconds_since(started);
            before.check(place)?;
            Ok(duration_ms)
        })
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

    /// Runs `f` in a subtransaction; when it fails, also releases the session-level advisory
    /// locks it took, which the rollback does not.
    fn in_subtransaction(
        &self,
        f: impl FnOnce() -> Result<f64, MigrateError>,
    ) -> Result<f64, MigrateError> {
        let before = self.session()?;
        let result = transaction::subtransaction(f);
        if result.is_err() {
            before.release_after_failure()?;
        }
        result
    }

    /// Makes `attempt` again (after a pause) while a statement of it fails to get a lock within
    /// `migrate.lock_timeout` and `migrate.lock_retries` allows, counting the `failed` attempts
    /// made before; each attempt rolls back what it did when it fails. Returns the duration of
    /// the successful attempt in ms.
    fn run_with_retries(
        &self,
        failed: i32,
        mut attempt: impl FnMut() -> Result<f64, MigrateError>,
    ) -> Result<f64, MigrateError> {
        let attempts = gucs::lock_retries() + 1;
        for number in failed + 1.. {
            match attempt() {
                Err(MigrateError::BodyFailed { error, place })
                    if error.code == PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE =>
                {
                    if number >= attempts {
                        return Err(MigrateError::LockTimeout {
                            error,
                            place,
                            attempts,
                            timeout_ms: gucs::lock_timeout_ms(),
                        });
                    }
                    pause_after_lock_timeout(&place, number);
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on the last attempt")
    }

    /// The role that registered `migration`, which its statements run as.
    fn registrant(
        &self,
        migration: &Migration,
        place: &Place,
    ) -> Result<pg_sys::Oid, MigrateError> {
        identity::role_oid(&migration.registered_by).ok_or_else(|| {
            MigrateError::UnknownRegistrant {
                role: migration.registered_by.clone(),
                place: place.clone(),
            }
        })
    }

    /// Runs one body as its registrant, statement by statement, makes sure it left nothing in
    /// the session that the call found absent, and returns its duration in ms.
    fn run_once(
        &self,
        place: &Place,
        migration: &Migration,
        deferred: DeferredChecks,
    ) -> Result<f64, MigrateError> {
        let body = migration.body.as_deref().unwrap_or_default();
        let mut statements: Vec<(&str, Position)> = parse::statements(body, place, migration.lane)?
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
        let registrant = self.registrant(migration, place)?;
        // control run "deferred triggers left for the caller's commit"
        if deferred == DeferredChecks::AtBodyEnd || registrant != self.call.caller {
            statements.push(("SET CONSTRAINTS ALL IMMEDIATE", Position::DeferredChecks));
        }
        self.run_statements(place, migration, &statements)
    }

    /// Runs `statements` of `migration` as its registrant, then makes sure they left nothing
    /// in the session that the call found absent; returns their duration in ms.
    fn run_statements(
        &self,
        place: &Place,
        migration: &Migration,
        statements: &[(&str, Position)],
    ) -> Result<f64, MigrateError> {
        let before = self.session()?;
        let registrant = self.registrant(migration, place)?;
        let started = Instant::now();
        {
            let _running = BodyRunning::start();
            identity::as_registrant(registrant, self.search_path.as_deref(), || {
                execute(statements, place)
            })?;
        }
        let duration_ms = milliseconds_since(started);
        // control run "nothing looked for at the end of a body"
        before.check(place)?;
        Ok(duration_ms)
    }
}

/// The milliseconds since `started`, to the nanosecond, as the journal keeps them. A count of
/// nanoseconds divided by a power of ten is the double nearest that decimal, so `status()` shows
/// 0.023645 where the seconds as a double times a thousand showed 0.023645000000000003.
pub fn milliseconds_since(started: Instant) -> f64 {
    started.elapsed().as_nanos() as f64 / 1e6
}

/// The first pause before another attempt of a migration that hit `migrate.lock_timeout`; each
/// further pause doubles, up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: u64 = 100;
const MAX_BACKOFF_MS: u64 = 5_000;

/// Says that attempt `number` of the migration at `place` could not get a lock in time, and
/// pauses before the next: `FIRST_BACKOFF_MS` after the first, twice the pause before after
/// each further one.
pub fn pause_after_lock_timeout(place: &Place, number: i32) {
    let backoff = (1..number).fold(FIRST_BACKOFF_MS, |backoff, _| {
        (backoff * 2).min(MAX_BACKOFF_MS)
    });
    notice!(
        "migration \"{}\" ({}) could not get a lock within {} ms (attempt {number} of {}); trying again in {backoff} ms",
        place.version,
        place.name,
        gucs::lock_timeout_ms(),
        gucs::lock_retries() + 1
    );
    backend::sleep(backoff);
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
            Spi::run(sql).map_err(|error| MigrateError::StatementNotRun {
                error,
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
