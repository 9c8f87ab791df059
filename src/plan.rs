//! `plan` and `plan_down`: what `up()` and `down()` would run, in order, without running it.

use crate::call::Call;
use crate::error::MigrateError;
use crate::parse;
use crate::place::{Body, Project};
use crate::runner::select::{self, Revert};
use crate::store::Migration;
use crate::tenants;

/// step, direction, version, name, sql, and whether it runs in one transaction.
pub type Step = (i32, String, String, String, Option<String>, bool);

/// The steps `pick` picks, read as the extension's owner without the runner lock (like
/// `status()`, a plan never waits for a running migration), once each body is known to pass
/// the checks the runner makes before running it: a body stored by an earlier release may hold
/// a statement this one refuses.
fn steps(
    function: &'static str,
    project: Project,
    direction: Body,
    pick: impl FnOnce(&Project) -> Result<Vec<Migration>, MigrateError>,
) -> Result<Vec<Step>, MigrateError> {
    let call = Call::reading(project);
    tenants::refuse(function, &call, "plan migrations")?;
    let migrations = call.as_owner(|| pick(&call.project))?;
    migrations
        .into_iter()
        .zip(1..)
        .map(|(migration, step)| {
            if let Some(body) = &migration.body {
                parse::statements(
                    body,
                    &call.place(&migration.version, &migration.name, direction),
                    migration.lane,
                )?;
            }
            Ok((
                step,
                direction.to_string(),
                migration.version,
                migration.name,
                migration.body,
                migration.lane.is_transactional(),
            ))
        })
        .collect()
}

pub fn plan(project: Project, target: Option<&str>) -> Result<Vec<Step>, MigrateError> {
    steps("migrate.plan()", project, Body::Up, |project| {
        select::to_run_up(project, target)
    })
}

pub fn plan_down(project: Project, steps_back: i32) -> Result<Vec<Step>, MigrateError> {
    steps("migrate.plan_down()", project, Body::Down, |project| {
        select::to_revert(project, Revert::Last(steps_back))
    })
}
