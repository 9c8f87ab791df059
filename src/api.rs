//! The SQL functions written in Rust. `migrate.history()`, `verify()` and the other readers are
//! SQL functions in `sql/finalize.sql`, which also declares `migrate.status()`.
//!
//! Arguments are declared nullable so that a NULL gets a clear error (22004) rather than a
//! silent NULL result; `up`'s target is the one argument where NULL has a meaning ("all").
//! The `'default'` of every `project` argument is `place::DEFAULT_PROJECT` (`default!` needs a
//! literal).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::error::{ErrorParts, MigrateError};
use crate::place::{Body, Lane, Place, Project};
use crate::postgres::transaction;
use crate::runner::select::Revert;
use crate::{adopt, declare, parse, plan, registry, rehearse, runner, status, tenants};

fn required<T>(value: Option<T>, argument: &'static str) -> Result<T, MigrateError> {
    value.ok_or(MigrateError::NullArgument { argument })
}

/// The `project` argument, checked once for the whole call: after every NULL check, so that a
/// NULL always gets 22004.
fn project(value: Option<&str>) -> Result<Project, MigrateError> {
    Ok(Project::new(required(value, "project")?)?)
}

/// Stores one migration; returns `registered`, `unchanged` or `updated`. A non-transactional
/// one (`transactional => false`) runs statement by statement, through `apply()`.
#[pg_extern(name = "register", volatile, parallel_unsafe)]
pub fn register_with_lane(
    version: Option<&str>,
    name: Option<&str>,
    up_sql: Option<&str>,
    down_sql: default!(Option<&str>, "NULL"),
    project: default!(Option<&str>, "'default'"),
    transactional: default!(Option<bool>, true),
) -> Result<&'static str, ErrorReport> {
    let (version, name, up_sql, transactional) = (
        required(version, "version")?,
        required(name, "name")?,
        required(up_sql, "up_sql")?,
        required(transactional, "transactional")?,
    );
    let project = self::project(project)?;
    let request = registry::Request {
        project: &project,
        version,
        name,
        up_sql,
        down_sql,
        lane: Lane::from_transactional(transactional),
        empty_down_is_none: false,
    };
    Ok(registry::register("migrate.register()", request)?.as_str())
}

/// Stores one repeatable migration (Flyway's `R__`): run again, after the versioned ones,
/// whenever its body differs from the one last run; returns `registered`, `unchanged` or
/// `updated`.
#[pg_extern(volatile, parallel_unsafe)]
fn register_repeatable(
    name: Option<&str>,
    body: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<&'static str, ErrorReport> {
    let (name, body) = (required(name, "name")?, required(body, "body")?);
    let project = self::project(project)?;
    Ok(
        registry::register_repeatable("migrate.register_repeatable()", &project, name, body)?
            .as_str(),
    )
}

/// Makes `project` fan out over tenant schemas, given as a list (`schemas`) or as a query
/// whose first column names them (`query`, run whenever a call starts, as the role that set
/// it): each
/// migration then runs once in each tenant, with `search_path` set to it. `apply()` runs the
/// first `canary` tenants first, and stops when one of them fails. Returns how many tenants
/// the set names now.
#[pg_extern(volatile, parallel_unsafe)]
fn set_tenants(
    schemas: default!(Option<Vec<Option<String>>>, "NULL"),
    query: default!(Option<&str>, "NULL"),
    canary: default!(Option<i32>, 0),
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    let canary = required(canary, "canary")?;
    Ok(tenants::set(
        self::project(project)?,
        schemas,
        query,
        canary,
    )?)
}

/// Makes `project` a project of one schema again; returns whether it had a tenant set.
#[pg_extern(volatile, parallel_unsafe)]
fn unset_tenants(project: default!(Option<&str>, "'default'")) -> Result<bool, ErrorReport> {
    Ok(tenants::unset(self::project(project)?)?)
}

/// The tenant schemas of `project`, resolved now, in the order calls run them.
#[pg_extern(stable, parallel_unsafe)]
fn tenants(
    project: default!(Option<&str>, "'default'"),
) -> Result<TableIterator<'static, (name!(tenant, String), name!(canary, bool))>, ErrorReport> {
    Ok(TableIterator::new(tenants::list(self::project(project)?)?))
}

/// One row per registered migration in each of its histories (declared in `sql/finalize.sql`,
/// with the settings its query runs under).
#[pg_extern(sql = false)]
fn status(project: Option<&str>, fcinfo: pg_sys::FunctionCallInfo) {
    status::rows(fcinfo, project);
}

/// Stores one migration from a file in the dbmate layout (`-- migrate:up`, `-- migrate:down`).
#[pg_extern(volatile, parallel_unsafe)]
fn register_script(
    version: Option<&str>,
    name: Option<&str>,
    script: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<&'static str, ErrorReport> {
    let (version, name, script) = (
        required(version, "version")?,
        required(name, "name")?,
        required(script, "script")?,
    );
    Ok(registry::register_script(&self::project(project)?, version, name, script)?.as_str())
}

/// Applies the pending migrations of `project` up to and including `target` (NULL: all).
#[pg_extern(volatile, parallel_unsafe)]
fn up(
    target: default!(Option<&str>, "NULL"),
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    Ok(runner::up("migrate.up()", self::project(project)?, target)?)
}

/// Reverts the `steps` most recently applied migrations of `project`, newest first.
#[pg_extern(volatile, parallel_unsafe)]
fn down(
    steps: default!(Option<i32>, 1),
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    let which = Revert::Last(required(steps, "steps")?);
    Ok(runner::down(
        "migrate.down()",
        self::project(project)?,
        which,
    )?)
}

/// Reverts every applied migration of `project` whose version is above `target`.
#[pg_extern(volatile, parallel_unsafe)]
fn down_to(
    target: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    let which = Revert::Above(required(target, "target")?);
    Ok(runner::down(
        "migrate.down_to()",
        self::project(project)?,
        which,
    )?)
}

/// Applies like `up()`, but commits after each migration; a failing one is rolled back alone,
/// recorded as failed, and raised. Inside a transaction block it cannot commit and works as `up()`.
#[pg_extern(sql = "
CREATE PROCEDURE migrate.apply(target text DEFAULT NULL, project text DEFAULT 'default')
LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn apply(
    target: Option<&str>,
    project: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let may_commit = transaction::call_may_commit(fcinfo);
    runner::apply(self::project(project)?, target, may_commit)?;
    Ok(())
}

/// Reverts like `down()`, but commits after each migration, and runs the down bodies of
/// non-transactional migrations statement by statement. Inside a transaction block it cannot
/// commit and works as `down()`.
#[pg_extern(sql = "
CREATE PROCEDURE migrate.revert(steps integer DEFAULT 1, project text DEFAULT 'default')
LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn revert(
    steps: Option<i32>,
    project: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let may_commit = transaction::call_may_commit(fcinfo);
    let steps = required(steps, "steps")?;
    runner::revert(self::project(project)?, steps, may_commit)?;
    Ok(())
}

/// Marks every pending migration of `project` up to `version` applied without running it.
#[pg_extern(volatile, parallel_unsafe)]
fn baseline(
    version: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    let version = required(version, "version")?;
    Ok(runner::baseline(self::project(project)?, version)?)
}

/// What `up(target, project)` would run, in order, without running it, and in which lane.
// pgrx reads the `RETURNS TABLE` columns from the written-out type, which clippy finds complex.
#[allow(clippy::type_complexity)]
#[pg_extern(name = "plan", stable, parallel_unsafe)]
pub fn plan_with_lanes(
    target: default!(Option<&str>, "NULL"),
    project: default!(Option<&str>, "'default'"),
) -> Result<
    TableIterator<
        'static,
        (
            name!(step, i32),
            name!(direction, String),
            name!(version, String),
            name!(name, String),
            name!(sql, Option<String>),
            name!(transactional, bool),
        ),
    >,
    ErrorReport,
> {
    Ok(TableIterator::new(plan::plan(
        self::project(project)?,
        target,
    )?))
}

/// What `down(steps, project)` would run, in order, without running it, and in which lane.
#[allow(clippy::type_complexity)]
#[pg_extern(name = "plan_down", stable, parallel_unsafe)]
pub fn plan_down_with_lanes(
    steps: default!(Option<i32>, 1),
    project: default!(Option<&str>, "'default'"),
) -> Result<
    TableIterator<
        'static,
        (
            name!(step, i32),
            name!(direction, String),
            name!(version, String),
            name!(name, String),
            name!(sql, Option<String>),
            name!(transactional, bool),
        ),
    >,
    ErrorReport,
> {
    let steps = required(steps, "steps")?;
    Ok(TableIterator::new(plan::plan_down(
        self::project(project)?,
        steps,
    )?))
}

/// Runs the pending ups of `project` up to `target`, then their downs in reverse, and rolls it
/// all back: tells whether each down restores the catalog its up found.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn rehearse(
    target: default!(Option<&str>, "NULL"),
    project: default!(Option<&str>, "'default'"),
) -> Result<
    TableIterator<
        'static,
        (
            name!(version, String),
            name!(name, String),
            name!(up_ok, Option<bool>),
            name!(down_ok, Option<bool>),
            name!(reversible, Option<bool>),
            name!(detail, Option<String>),
            name!(duration_ms, Option<f64>),
        ),
    >,
    ErrorReport,
> {
    let outcomes = rehearse::rehearse(self::project(project)?, target)?;
    Ok(TableIterator::new(outcomes.into_iter().map(|o| {
        (
            o.version,
            o.name,
            o.up_ok,
            o.down_ok,
            o.reversible,
            o.detail,
            o.duration_ms,
        )
    })))
}

/// Registers the migrations in a set of files a client sends (their paths and contents, in the
/// layouts of dbmate, golang-migrate, sqlx, diesel or Flyway); returns how many were registered
/// or updated.
#[pg_extern(volatile, parallel_unsafe)]
fn register_files(
    paths: Option<Vec<Option<String>>>,
    contents: Option<Vec<Option<String>>>,
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    let paths = required(paths, "paths")?;
    let contents = required(contents, "contents")?;
    let project = required(project, "project")?;
    if paths.len() != contents.len() {
        return Err(MigrateError::FileListLengths {
            paths: paths.len(),
            contents: contents.len(),
        }
        .into());
    }
    let files = paths
        .into_iter()
        .zip(contents)
        .map(|(path, content)| Ok((required(path, "a path")?, required(content, "a content")?)))
        .collect::<Result<Vec<_>, MigrateError>>()?;
    Ok(registry::register_files(
        "migrate.register_files()",
        &Project::new(project).map_err(MigrateError::from)?,
        &files,
    )?)
}

/// Whether `register_files()` last registered exactly the files whose `sha256sum` listing this
/// is, with nothing registered changed since: a client that computes the listing ships the
/// files only when it is false.
#[pg_extern(volatile, parallel_unsafe)]
fn files_unchanged(
    sha256sums: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<bool, ErrorReport> {
    let sha256sums = required(sha256sums, "sha256sums")?;
    Ok(registry::files_unchanged(
        &self::project(project)?,
        sha256sums,
    )?)
}

/// Registers the migration files of a directory on the database server (see `register_files`).
#[pg_extern(volatile, parallel_unsafe)]
fn import_dir(
    path: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    let path = required(path, "path")?;
    Ok(registry::import_dir(&self::project(project)?, path)?)
}

/// Marks applied the registered migrations of `project` that another tool's history (dbmate,
/// rails, golang-migrate, sqlx, flyway, goose) says it applied; returns how many.
#[pg_extern(volatile, parallel_unsafe)]
fn adopt(
    tool: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    let tool = required(tool, "tool")?;
    Ok(adopt::adopt(self::project(project)?, tool)?)
}

/// For `migrate.verify()`: why this release would refuse a stored body (one stored by an earlier
/// release, before its statement was refused), or NULL when it would run it.
#[pg_extern(name = "body_refusal", stable, parallel_safe)]
pub fn body_refusal_in_lane(
    project: &str,
    version: &str,
    name: &str,
    body: &str,
    direction: &str,
    transactional: bool,
) -> Option<String> {
    let body_kind = if direction == "down" {
        Body::Down
    } else {
        Body::Up
    };
    let refusal = Project::new(project)
        .map_err(MigrateError::from)
        .and_then(|project| {
            parse::statements(
                body,
                &Place::whole(&project, version, name, body_kind),
                Lane::from_transactional(transactional),
            )
        })
        .err()?;
    Some(ErrorParts::from(refusal).summary())
}

/// The migration that takes the catalog of `schemas` (NULL: every user schema) to the schema
/// `desired_sql` creates, built in a subtransaction that is rolled back: its up SQL, and its
/// down SQL where one exists. Steps that lose data are refused unless `allow_destructive`.
#[pg_extern(volatile, parallel_unsafe)]
fn diff(
    desired_sql: Option<&str>,
    schemas: default!(Option<Vec<String>>, "NULL"),
    allow_destructive: default!(Option<bool>, false),
) -> Result<TableIterator<'static, (name!(up, String), name!(down, Option<String>))>, ErrorReport> {
    let (desired_sql, allow_destructive) = (
        required(desired_sql, "desired_sql")?,
        required(allow_destructive, "allow_destructive")?,
    );
    let diff = declare::diff("migrate.diff()", desired_sql, schemas, allow_destructive)?;
    Ok(TableIterator::once((diff.up, diff.down)))
}

/// Registers the migration `diff()` writes to reach `desired_sql` as an ordinary one; returns
/// what `register()` does.
#[pg_extern(volatile, parallel_unsafe)]
fn declare(
    version: Option<&str>,
    name: Option<&str>,
    desired_sql: Option<&str>,
    project: default!(Option<&str>, "'default'"),
    schemas: default!(Option<Vec<String>>, "NULL"),
    allow_destructive: default!(Option<bool>, false),
) -> Result<&'static str, ErrorReport> {
    let (version, name, desired_sql, allow_destructive) = (
        required(version, "version")?,
        required(name, "name")?,
        required(desired_sql, "desired_sql")?,
        required(allow_destructive, "allow_destructive")?,
    );
    let project = self::project(project)?;
    let registration = declare::declare(
        &project,
        version,
        name,
        desired_sql,
        schemas,
        allow_destructive,
    )?;
    Ok(registration.as_str())
}
