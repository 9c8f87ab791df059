//! The non-transactional lane: a migration whose statements run one at a time, each committed
//! before the next, those PostgreSQL runs only outside a transaction block at top level.
//! Each statement is journaled (`started`, then `ran` or `failed`), so a run that failed or
//! was interrupted resumes at the first statement that did not run, and an index whose
//! concurrent build did not finish is dropped before it is built again.

use std::time::Instant;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use super::execute::{Executor, milliseconds_since};
use super::record_and_commit;
use crate::call::Call;
use crate::error::{ErrorParts, MigrateError};
use crate::parse::{self, Statement};
use crate::place::{Body, Lane, Place, Position};
use crate::postgres::lock::LaneLease;
use crate::postgres::parser::Leftover;
use crate::postgres::transaction::Committing;
use crate::store::{self, Event, Migration, Recorder};

/// Runs the `direction` body of `migration` statement by statement, from the first one that
/// has not run, and records it applied or reverted. The runner lock is let go of meanwhile,
/// under the lane's own lock (see `lock::LANE_LOCK_KEY`); the caller takes it again for what
/// comes next.
pub fn run(
    call: &mut Call,
    committing: &Committing,
    recorder: &Recorder,
    migration: &Migration,
    direction: Body,
) -> Result<(), MigrateError> {
    let place = call.place(&migration.version, &migration.name, direction);
    let body = migration.body.as_deref().unwrap_or_default();
    let statements = parse::statements(body, &place, Lane::NonTransactional)?;
    let progress = call.as_owner(|| store::progress(&call.project, &migration.version))?;
    let _lease = LaneLease::take();
    call.release_lock();
    let call = &*call;
    let executor = Executor::new(call);
    let started = Instant::now();
    for (index, statement) in statements.iter().enumerate() {
        let number = index + 1;
        if progress.ran.contains(&number) {
            continue;
        }
        let step = Step {
            call,
            migration,
            number,
            count: statements.len(),
            place: place.at(Position::Statement {
                number,
                line: statement.line,
            }),
        };
        step.record(Event::Started, None)?;
        committing.commit();
        let sql = &body[statement.start..statement.end];
        let interrupted = progress.started.contains(&number);
        match step.run(&executor, statement, sql, interrupted, committing) {
            Ok(duration_ms) => {
                step.record(Event::Ran, Some(duration_ms))?;
                committing.commit();
                notice!(
                    "migration \"{}\" ({}): {} ran in {duration_ms:.1} ms",
                    migration.version,
                    migration.name,
                    step.statement()
                );
            }
            Err(error) => {
                let error = ErrorParts::from(error);
                call.as_owner(|| {
                    store::record_failed(&call.project, migration, &call.role, &error, Some(number))
                })?;
                committing.commit();
                return Err(MigrateError::Server(error));
            }
        }
    }
    let duration_ms = milliseconds_since(started);
    record_and_commit(
        call,
        recorder,
        migration,
        direction,
        duration_ms,
        committing,
    )
}

/// One statement of the migration being run.
struct Step<'a> {
    call: &'a Call,
    migration: &'a Migration,
    number: usize,
    count: usize,
    place: Place,
}

impl Step<'_> {
    fn statement(&self) -> String {
        let Position::Statement { line, .. } = self.place.position else {
            unreachable!("a step is at a statement")
        };
        format!("statement {} of {} (line {line})", self.number, self.count)
    }

    fn record(&self, event: Event, duration_ms: Option<f64>) -> Result<(), MigrateError> {
        let call = self.call;
        call.as_owner(|| {
            store::record_statement(
                &call.project,
                self.migration,
                &call.role,
                event,
                self.number,
                duration_ms,
                &self.statement(),
            )
        })
    }

    /// Runs the statement and returns its duration in ms; `interrupted` when an earlier run
    /// started it and did not see it end. A concurrent statement first clears what an earlier
    /// attempt left, and clears what it leaves itself when it fails.
    fn run(
        &self,
        executor: &Executor<'_>,
        statement: &Statement,
        sql: &str,
        interrupted: bool,
        committing: &Committing,
    ) -> Result<f64, MigrateError> {
        let Some(leftover) = &statement.leftover else {
            return if statement.top_level {
                executor.run_top_level(self.migration, &self.place, sql, committing)
            } else {
                executor.run_statement(self.migration, &self.place, sql)
            };
        };
        let found = Found::of(leftover)?;
        // The statement finished; what was lost is the record of it.
        if interrupted && found.finished {
            notice!(
                "migration \"{}\" ({}): {} had finished before it was interrupted",
                self.migration.version,
                self.migration.name,
                self.statement()
            );
            return Ok(0.0);
        }
        // control run "an INVALID index left for the next run"
        self.drop_invalid(executor, &found.invalid, committing)?;
        let ran = executor.run_top_level(self.migration, &self.place, sql, committing);
        if ran.is_err()
            // The statement's own error is the one to raise; a failed clean-up is only told.
            && let Err(error) = Found::of(leftover)
                .and_then(|found| self.drop_invalid(executor, &found.invalid, committing))
        {
            warning!(
                "could not drop the INVALID indexes {} left: {}",
                self.statement(),
                ErrorParts::from(error).message
            );
        }
        ran
    }

    /// Drops `indexes`, left INVALID by a run of this statement that did not finish.
    fn drop_invalid(
        &self,
        executor: &Executor<'_>,
        indexes: &[String],
        committing: &Committing,
    ) -> Result<(), MigrateError> {
        for index in indexes {
            let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {index}");
            executor.run_top_level(self.migration, &self.place, &drop, committing)?;
            notice!(
                "migration \"{}\" ({}): dropped INVALID index {index}, left by a run of {} that did not finish",
                self.migration.version,
                self.migration.name,
                self.statement()
            );
        }
        Ok(())
    }
}

/// What the catalog shows now of a concurrent statement's work, looked up with the caller's
/// search_path, as the statement resolves its names.
struct Found {
    /// Whether its work is all there: the index built and valid, the indexes dropped.
    finished: bool,
    /// The INVALID indexes an unfinished run left, schema-qualified and quoted.
    invalid: Vec<String>,
}

impl Found {
    fn of(leftover: &Leftover) -> Result<Found, MigrateError> {
        let indexes = |query: &str, args: &[DatumWithOid<'_>]| {
            store::select_rows::<_, Vec<(bool, String)>>(query, args, |row| {
                Ok((
                    row.get::<bool>(1)?.unwrap_or(false),
                    row.get::<String>(2)?.unwrap_or_default(),
                ))
            })
        };
        const INDEXES: &str =
            "SELECT i.indisvalid, pg_catalog.format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_index i
               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
               JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace";
        let invalid = |found: &[(bool, String)]| {
            found
                .iter()
                .filter(|(valid, _)| !valid)
                .map(|(_, name)| name.clone())
                .collect()
        };
        Ok(match leftover {
            Leftover::Index { table, index } => {
                let found = indexes(
                    &format!("{INDEXES} WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
                                AND c.relname OPERATOR(pg_catalog.=) $2"),
                    &[table.as_str().into(), index.as_deref().into()],
                )?;
                Found {
                    finished: found.iter().any(|(valid, _)| *valid),
                    invalid: invalid(&found),
                }
            }
            // PostgreSQL names the copies of a rebuild <index>_ccnew and, once swapped, the old
            // ones <index>_ccold, with a number when the name is taken.
            Leftover::Rebuild { relation, is_index } => {
                let table = if *is_index {
                    "(SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1))"
                } else {
                    "pg_catalog.to_regclass($1)"
                };
                let found = indexes(
                    &format!(
                        "{INDEXES} WHERE i.indrelid OPERATOR(pg_catalog.=) {table}
                                AND c.relname OPERATOR(pg_catalog.~) '_cc(new|old)[0-9]*$'"
                    ),
                    &[relation.as_str().into()],
                )?;
                Found {
                    finished: false,
                    invalid: invalid(&found),
                }
            }
            Leftover::Drop(names) => {
                let found = indexes(
                    &format!("{INDEXES} WHERE i.indexrelid OPERATOR(pg_catalog.=) ANY (
                                SELECT pg_catalog.to_regclass(x) FROM pg_catalog.unnest($1::pg_catalog.text[]) x)"),
                    &[names.clone().into()],
                )?;
                Found {
                    finished: found.is_empty(),
                    invalid: Vec::new(),
                }
            }
        })
    }
}
