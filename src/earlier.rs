//! The C functions that SQL definitions of earlier releases name, with the arguments and
//! results those definitions declare, so that a database keeps working between the
//! installation of this library and `ALTER EXTENSION migrations UPDATE`. Each is the current
//! function seen through the older signature: migrations registered through one are
//! transactional, as every migration was.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::api;

/// `migrate.register()` of 0.1.0 to 0.2.2.
#[pg_extern(sql = false)]
fn register(
    version: Option<&str>,
    name: Option<&str>,
    up_sql: Option<&str>,
    down_sql: Option<&str>,
    project: Option<&str>,
) -> Result<&'static str, ErrorReport> {
    api::register_with_lane(version, name, up_sql, down_sql, project, Some(true))
}

/// A step of `plan()` and `plan_down()` of 0.1.0 to 0.2.2: without its lane.
type Step = (i32, String, String, String, Option<String>);

fn without_lanes(
    steps: TableIterator<'static, (i32, String, String, String, Option<String>, bool)>,
) -> TableIterator<'static, Step> {
    TableIterator::new(
        steps.map(|(step, direction, version, name, sql, _)| (step, direction, version, name, sql)),
    )
}

/// `migrate.plan()` of 0.1.0 to 0.2.2.
// pgrx reads the result columns from the written-out type, which clippy finds complex.
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn plan(
    target: Option<&str>,
    project: Option<&str>,
) -> Result<TableIterator<'static, (i32, String, String, String, Option<String>)>, ErrorReport> {
    Ok(without_lanes(api::plan_with_lanes(target, project)?))
}

/// `migrate.plan_down()` of 0.1.0 to 0.2.2.
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn plan_down(
    steps: Option<i32>,
    project: Option<&str>,
) -> Result<TableIterator<'static, (i32, String, String, String, Option<String>)>, ErrorReport> {
    Ok(without_lanes(api::plan_down_with_lanes(steps, project)?))
}

/// `migrate.body_refusal()` of 0.2.1 and 0.2.2, which `verify()` of those releases calls.
#[pg_extern(sql = false, stable, parallel_safe)]
fn body_refusal(
    project: &str,
    version: &str,
    name: &str,
    body: &str,
    direction: &str,
) -> Option<String> {
    api::body_refusal_in_lane(project, version, name, body, direction, true)
}
