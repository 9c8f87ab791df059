//! What a call picks: the migrations `up()` and `apply()` would apply, and those `down()` and
//! `down_to()` would revert. `plan` and `rehearse` pick the same way.

use crate::error::MigrateError;
use crate::gucs;
use crate::place::Project;
use crate::store::{self, Migration};
use crate::version;

/// The registered version `target` of `project`, as a version key.
fn target_key(project: &Project, target: &str) -> Result<Vec<u8>, MigrateError> {
    store::version_key(project, target)?.ok_or_else(|| MigrateError::UnknownVersion {
        project: project.clone(),
        version: target.to_owned(),
    })
}

/// The pending migrations up to `target`, in version order, without refusing any.
pub fn pending(project: &Project, target: Option<&str>) -> Result<Vec<Migration>, MigrateError> {
    let up_to = target
        .map(|target| target_key(project, target))
        .transpose()?;
    store::pending(project, up_to.as_deref())
}

/// What `up()` and `apply()` apply: the pending migrations up to `target`, in version order,
/// unless some are older than an applied one and out-of-order is not allowed.
pub fn to_apply(project: &Project, target: Option<&str>) -> Result<Vec<Migration>, MigrateError> {
    let pending = pending(project, target)?;
    if !gucs::allow_out_of_order() {
        refuse_out_of_order(project, &pending)?;
    }
    Ok(pending)
}

/// What `up()` and `apply()` run: `to_apply`, then, when they apply everything (no `target`),
/// the repeatable migrations whose body is not the one last run.
pub fn to_run_up(project: &Project, target: Option<&str>) -> Result<Vec<Migration>, MigrateError> {
    let mut migrations = to_apply(project, target)?;
    if target.is_none() {
        migrations.extend(store::repeatables_due(project)?);
    }
    Ok(migrations)
}

fn refuse_out_of_order(project: &Project, pending: &[Migration]) -> Result<(), MigrateError> {
    // Nothing pending (every start-up after the first): nothing to compare.
    if pending.is_empty() {
        return Ok(());
    }
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
            project: project.clone(),
            versions: older,
            highest,
        })
    }
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
pub fn to_revert(project: &Project, which: Revert<'_>) -> Result<Vec<Migration>, MigrateError> {
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
            project: project.clone(),
            versions: without_down,
        })
    }
}
