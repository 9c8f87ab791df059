//! `plan` and `plan_down`: what `up()` and `down()` would run, in order, without running it.

use crate::error::{Body, MigrateError, Place};
use crate::runner::{self, Revert};
use crate::store::Migration;
use crate::{parse, session, version};

pub type Step = (i32, String, String, String, Option<String>);

/// The steps, once each body is known to pass the checks the runner makes before running it: a
/// body stored by an earlier release may hold a statement this one refuses.
fn steps(
    project: &str,
    direction: Body,
    migrations: Vec<Migration>,
) -> Result<Vec<Step>, MigrateError> {
    migrations
        .into_iter()
        .zip(1..)
        .map(|(migration, step)| {
            if let Some(body) = &migration.body {
                let place = Place::whole(project, &migration.version, &migration.name, direction);
                parse::statements(body, &place)?;
            }
            Ok((
                step,
                direction.to_string(),
                migration.version,
                migration.name,
                migration.body,
            ))
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
    steps(
        project,
        Body::Up,
        read(project, || runner::to_apply(project, target))?,
    )
}

pub fn plan_down(project: &str, steps_back: i32) -> Result<Vec<Step>, MigrateError> {
    steps(
        project,
        Body::Down,
        read(project, || {
            runner::to_revert(project, Revert::Last(steps_back))
        })?,
    )
}
