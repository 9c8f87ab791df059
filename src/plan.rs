//! `plan` and `plan_down`: what `up()` and `down()` would run, in order, without running it.

use crate::error::MigrateError;
use crate::runner::{self, Revert};
use crate::store::Migration;
use crate::{session, version};

pub type Step = (i32, String, String, String, Option<String>);

fn steps(direction: &str, migrations: Vec<Migration>) -> Vec<Step> {
    migrations
        .into_iter()
        .zip(1..)
        .map(|(migration, step)| {
            (
                step,
                direction.to_owned(),
                migration.version,
                migration.name,
                migration.body,
            )
        })
        .collect()
}

/// Reads what a runner would pick, as the extension's owner, without the runner lock: like
/// `status()`, a plan never waits for a running migration.
fn read(
    project: &str,
    pick: impl FnOnce() -> Result<Vec<Migration>, MigrateError>,
) -> Result<Vec<Migration>, MigrateError> {
    version::check_project(project)?;
    session::as_owner(session::extension_owner()?, pick)
}

pub fn plan(project: &str, target: Option<&str>) -> Result<Vec<Step>, MigrateError> {
    Ok(steps(
        "up",
        read(project, || runner::to_apply(project, target))?,
    ))
}

pub fn plan_down(project: &str, steps_back: i32) -> Result<Vec<Step>, MigrateError> {
    Ok(steps(
        "down",
        read(project, || {
            runner::to_revert(project, Revert::Last(steps_back))
        })?,
    ))
}
