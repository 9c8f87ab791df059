//! The SQL functions written in Rust. `migrate.status()` and `migrate.history()` are SQL
//! functions in `sql/finalize.sql`.
//!
//! Arguments are declared nullable so that a NULL gets a clear error (22004) rather than a
//! silent NULL result; `up`'s target is the one argument where NULL has a meaning ("all").

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::error::MigrateError;
use crate::{registry, runner};

fn required<T>(value: Option<T>, argument: &'static str) -> Result<T, MigrateError> {
    value.ok_or(MigrateError::NullArgument { argument })
}

/// Stores one migration; returns `registered`, `unchanged` or `updated`.
#[pg_extern(volatile, parallel_unsafe)]
fn register(
    version: Option<&str>,
    name: Option<&str>,
    up_sql: Option<&str>,
    down_sql: default!(Option<&str>, "NULL"),
    project: default!(Option<&str>, "'default'"),
) -> Result<&'static str, ErrorReport> {
    let request = registry::Request {
        project: required(project, "project")?,
        version: required(version, "version")?,
        name: required(name, "name")?,
        up_sql: required(up_sql, "up_sql")?,
        down_sql,
    };
    Ok(registry::register("migrate.register()", &request)?)
}

/// Stores one migration from a file in the dbmate layout (`-- migrate:up`, `-- migrate:down`).
#[pg_extern(volatile, parallel_unsafe)]
fn register_script(
    version: Option<&str>,
    name: Option<&str>,
    script: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<&'static str, ErrorReport> {
    Ok(registry::register_script(
        required(project, "project")?,
        required(version, "version")?,
        required(name, "name")?,
        required(script, "script")?,
    )?)
}

/// Applies the pending migrations of `project` up to and including `target` (NULL: all).
#[pg_extern(volatile, parallel_unsafe)]
fn up(
    target: default!(Option<&str>, "NULL"),
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    Ok(runner::up(required(project, "project")?, target)?)
}

/// Reverts the `steps` most recently applied migrations of `project`, newest first.
#[pg_extern(volatile, parallel_unsafe)]
fn down(
    steps: default!(Option<i32>, 1),
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    Ok(runner::down(
        required(project, "project")?,
        required(steps, "steps")?,
    )?)
}

/// Reverts every applied migration of `project` whose version is above `target`.
#[pg_extern(volatile, parallel_unsafe)]
fn down_to(
    target: Option<&str>,
    project: default!(Option<&str>, "'default'"),
) -> Result<i32, ErrorReport> {
    Ok(runner::down_to(
        required(project, "project")?,
        required(target, "target")?,
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
    // SAFETY: fcinfo is this call's; a CALL passes a CallContext saying whether it may commit.
    let nonatomic = unsafe {
        let context = (*fcinfo).context;
        !context.is_null()
            && (*context).type_ == pg_sys::NodeTag::T_CallContext
            && !(*(context as *mut pg_sys::CallContext)).atomic
    };
    runner::apply(required(project, "project")?, target, nonatomic)?;
    Ok(())
}
