//! `rehearse`: runs the pending ups, then their downs in reverse, inside a subtransaction that is
//! rolled back, and tells for each migration whether its down restores the catalog its up found.

use std::collections::BTreeSet;

use crate::call::Call;
use crate::error::{ErrorParts, MigrateError};
use crate::place::{Body, Project};
use crate::postgres::lock::LockScope;
use crate::postgres::transaction;
use crate::runner::execute::{DeferredChecks, Executor};
use crate::runner::select;
use crate::store::{self, Event, Migration};
use crate::tenants;
use crate::text::counted;

/// One row of `migrate.rehearse()`.
pub struct Outcome {
    pub version: String,
    pub name: String,
    pub up_ok: Option<bool>,
    pub down_ok: Option<bool>,
    pub reversible: Option<bool>,
    pub detail: Option<String>,
    pub duration_ms: Option<f64>,
}

pub fn rehearse(project: Project, target: Option<&str>) -> Result<Vec<Outcome>, MigrateError> {
    const FUNCTION: &str = "migrate.rehearse()";
    let mut call = Call::locked_outside_lane(FUNCTION, project, LockScope::Transaction)?;
    tenants::refuse(FUNCTION, &call, "rehearse migrations")?;
    let (mut pending, downs) = call.as_owner(|| {
        Ok((
            select::to_apply(&call.project, target)?,
            store::down_bodies(&call.project)?,
        ))
    })?;
    call.end_snapshot();
    // What a non-transactional migration does commits, and cannot be rolled back: the
    // rehearsal stops before the first one, and says so.
    let unrehearsable = pending
        .iter()
        .position(|migration| !migration.lane.is_transactional())
        .map(|at| pending.split_off(at).swap_remove(0));
    let Some(last) = pending.last().or(unrehearsable.as_ref()) else {
        return Ok(Vec::new());
    };
    let mut outcomes = if pending.is_empty() {
        Vec::new()
    } else {
        transaction::rolled_back_subtransaction(|| {
            let downs = pending
                .iter()
                .map(|migration| Migration {
                    body: downs.get(&migration.version).cloned().flatten(),
                    ..migration.clone()
                })
                .collect::<Vec<_>>();
            rehearse_in(&call, &pending, &downs)
        })?
    };
    let rehearsed = outcomes.len();
    if let Some(migration) = &unrehearsable {
        outcomes.push(Outcome {
            version: migration.version.clone(),
            name: migration.name.clone(),
            up_ok: None,
            down_ok: None,
            reversible: None,
            detail: Some(
                "non-transactional: its statements commit one at a time, so it is not rehearsed, nor what follows it".to_owned(),
            ),
            duration_ms: None,
        });
    }
    let reversible = outcomes
        .iter()
        .filter(|outcome| outcome.reversible == Some(true))
        .count();
    let summary = format!(
        "{} rehearsed, {reversible} reversible",
        counted(rehearsed, "migration")
    );
    call.as_owner(|| {
        store::record_event(
            &call.project,
            &last.version,
            Event::Rehearse,
            &call.role,
            None,
            &summary,
        )
    })?;
    Ok(outcomes)
}

fn failure(error: MigrateError) -> String {
    ErrorParts::from(error).summary()
}

/// Inside the rolled-back subtransaction: the ups in order, each kept in a subtransaction of
/// its own, then the downs of those that ran, newest first.
fn rehearse_in(
    call: &Call,
    ups: &[Migration],
    downs: &[Migration],
) -> Result<Vec<Outcome>, MigrateError> {
    let executor = Executor::new(call);
    let mut outcomes: Vec<Outcome> = ups
        .iter()
        .map(|migration| Outcome {
            version: migration.version.clone(),
            name: migration.name.clone(),
            up_ok: None,
            down_ok: None,
            reversible: None,
            detail: None,
            duration_ms: None,
        })
        .collect();
    // before[i]: the catalog as the up of migration i found it.
    let mut before = Vec::new();
    for (index, up) in ups.iter().enumerate() {
        before.push(call.as_owner(store::catalog)?);
        match executor.run_alone(up, Body::Up, DeferredChecks::AtBodyEnd) {
            Ok(duration_ms) => {
                outcomes[index].up_ok = Some(true);
                outcomes[index].duration_ms = Some(duration_ms);
            }
            Err(error) => {
                outcomes[index].up_ok = Some(false);
                outcomes[index].detail = Some(failure(error));
                for later in &mut outcomes[index + 1..] {
                    later.detail = Some(format!("not run: the up of \"{}\" failed", up.version));
                }
                break;
            }
        }
    }
    let ran = before.len() - usize::from(outcomes[before.len() - 1].up_ok == Some(false));
    // A difference is blamed on the first down after which it shows; later (older) downs are
    // judged on what is new.
    let mut blamed = BTreeSet::new();
    for index in (0..ran).rev() {
        let down = &downs[index];
        let stop = match down.body {
            None => {
                outcomes[index].reversible = Some(false);
                outcomes[index].detail = Some("no down body".to_owned());
                Some("has no down body")
            }
            Some(_) => match executor.run_alone(down, Body::Down, DeferredChecks::AtBodyEnd) {
                Ok(duration_ms) => {
                    let after = call.as_owner(store::catalog)?;
                    let differences: Vec<String> = after
                        .difference(&before[index])
                        .map(|line| format!("left behind: {line}"))
                        .chain(
                            before[index]
                                .difference(&after)
                                .map(|line| format!("missing: {line}")),
                        )
                        .filter(|difference| blamed.insert(difference.clone()))
                        .collect();
                    let outcome = &mut outcomes[index];
                    outcome.down_ok = Some(true);
                    outcome.duration_ms =
                        Some(outcome.duration_ms.unwrap_or_default() + duration_ms);
                    outcome.reversible = Some(differences.is_empty());
                    if !differences.is_empty() {
                        outcome.detail = Some(differences.join("\n"));
                    }
                    None
                }
                Err(error) => {
                    outcomes[index].down_ok = Some(false);
                    outcomes[index].reversible = Some(false);
                    outcomes[index].detail = Some(failure(error));
                    Some("failed")
                }
            },
        };
        // Below a down that did not run, the catalog is not what older downs expect.
        if let Some(reason) = stop {
            for earlier in &mut outcomes[..index] {
                earlier.detail = Some(format!(
                    "not checked: the down of \"{}\" {reason}",
                    down.version
                ));
            }
            break;
        }
    }
    Ok(outcomes)
}
