//! `diff()` and `declare()`: the migration that takes the catalog to a desired schema. The
//! desired schema is built from its SQL in a subtransaction that is rolled back, with the
//! schemas compared moved aside, and the two snapshots (`migrate.snapshot()`) are compared.

mod statements;

use std::collections::BTreeSet;

use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::Value;

use crate::call::{self, BodyRunning, Call};
use crate::error::MigrateError;
use crate::place::{Lane, Project};
use crate::postgres::identity;
use crate::postgres::quote::identifier;
use crate::postgres::transaction;
use crate::registry::{self, Registration, Request};
use crate::{store, tenants};
use statements::{ACL_KINDS, AclDefaults, Changes, Grant};

/// What `diff()` returns.
pub struct Diff {
    pub up: String,
    /// None where no statements can take the desired schema back.
    pub down: Option<String>,
    /// Whether `up` has a statement (it may hold notes only).
    pub changes_anything: bool,
}

/// The schemas no diff may move aside.
const SYSTEM_SCHEMAS: [&str; 3] = ["migrate", "pg_catalog", "information_schema"];

/// The migration that takes the catalog of `schemas` (none: every user schema) to what
/// `desired_sql` creates, and the one that takes it back.
pub fn diff(
    function: &'static str,
    desired_sql: &str,
    schemas: Option<Vec<String>>,
    allow_destructive: bool,
) -> Result<Diff, MigrateError> {
    call::refuse_nested(function)?;
    if let Some(schema) = schemas.iter().flatten().find(|schema| {
        SYSTEM_SCHEMAS.contains(&schema.as_str())
            || schema.starts_with("pg_")
            || schema.starts_with(SCRATCH)
    }) {
        return Err(MigrateError::DiffScope {
            schema: schema.clone(),
        });
    }
    let before = snapshot(schemas.as_deref())?;
    // The schemas that exist of those compared: the desired schema may add the others.
    let scope: Vec<String> = before
        .get("schemas")
        .and_then(Value::as_object)
        .map(|schemas| schemas.keys().cloned().collect())
        .unwrap_or_default();
    let (_, role) = identity::current_role();
    // control run "the desired schema kept"
    let after = transaction::rolled_back_subtransaction(|| {
        move_aside(&scope, &before, &role)?;
        transaction::subtransaction(|| {
            let _running = BodyRunning::start();
            Ok(Spi::run(desired_sql)?)
        })
        .map_err(|error| match error {
            MigrateError::Server(error) => MigrateError::DesiredSchema { error },
            other => other,
        })?;
        let mut after = snapshot(schemas.as_deref())?;
        without_aside(&mut after);
        Ok(after)
    })?;
    let defaults = acl_defaults(&[&before, &after], &role)?;
    let up = statements::changes(&before, &after, &role, &defaults);
    if !up.impossible.is_empty() {
        return Err(MigrateError::DiffImpossible {
            changes: up.impossible,
        });
    }
    if !allow_destructive && !up.destructive.is_empty() {
        return Err(MigrateError::DiffDestructive {
            steps: up.destructive,
        });
    }
    let down = statements::changes(&after, &before, &role, &defaults);
    Ok(Diff {
        changes_anything: !up.statements.is_empty(),
        up: up.sql(),
        down: down.impossible.is_empty().then(|| down.sql()),
    })
}

/// Registers the migration `diff()` writes to reach `desired_sql` as `version` of `project`.
pub fn declare(
    project: &Project,
    version: &str,
    name: &str,
    desired_sql: &str,
    schemas: Option<Vec<String>>,
    allow_destructive: bool,
) -> Result<Registration, MigrateError> {
    const FUNCTION: &str = "migrate.declare()";
    call::refuse_nested(FUNCTION)?;
    // The catalog the diff starts from must be the one the migration will run on.
    let call = Call::reading(project.clone());
    tenants::refuse(FUNCTION, &call, "declare migrations")?;
    let pending: Vec<String> = call
        .as_owner(|| store::pending(project, None))?
        .into_iter()
        .map(|migration| migration.version)
        .filter(|pending| pending != version)
        .collect();
    if !pending.is_empty() {
        return Err(MigrateError::DeclarePending {
            project: project.clone(),
            pending,
        });
    }
    let diff = diff(FUNCTION, desired_sql, schemas, allow_destructive)?;
    if !diff.changes_anything {
        let registered = call.as_owner(|| {
            Ok(match store::version_key(project, version)? {
                Some(key) => store::registered(project, &key)?.is_some(),
                None => false,
            })
        })?;
        return if registered {
            Ok(Registration::Unchanged)
        } else {
            Err(MigrateError::NothingToDeclare {
                version: version.to_owned(),
            })
        };
    }
    registry::register(
        FUNCTION,
        Request {
            project,
            version,
            name,
            up_sql: &diff.up,
            down_sql: diff.down.as_deref(),
            lane: Lane::Transactional,
            empty_down_is_none: true,
        },
    )
}

/// The prefix of the names the compared schemas are moved aside to.
const SCRATCH: &str = "migrate diff ";

fn snapshot(schemas: Option<&[String]>) -> Result<Value, MigrateError> {
    // A schema named that does not exist is one the other side adds or drops.
    let existing: Option<Vec<String>> = match schemas {
        Some(schemas) => Some(
            Spi::get_one_with_args::<Vec<String>>(
                "SELECT COALESCE(pg_catalog.array_agg(s.nspname::pg_catalog.text), '{}')
                   FROM pg_catalog.pg_namespace s
                  WHERE s.nspname OPERATOR(pg_catalog.=) ANY ($1)",
                &[schemas.to_vec().into()],
            )?
            .unwrap_or_default(),
        ),
        None => None,
    };
    let snapshot =
        Spi::get_one_with_args::<JsonB>("SELECT migrate.snapshot($1)", &[existing.into()])?;
    Ok(snapshot.map(|JsonB(value)| value).unwrap_or(Value::Null))
}

/// Renames every schema of `scope` aside and drops the extensions they hold (the desired
/// schema says which it has), then makes an empty `public` like the one moved, which desired
/// SQL takes for granted.
fn move_aside(scope: &[String], before: &Value, role: &str) -> Result<(), MigrateError> {
    let mut aside = Vec::new();
    let mut number = 0;
    for name in scope {
        let scratch = loop {
            number += 1;
            let scratch = format!("{SCRATCH}{number}");
            let taken = Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1)",
                &[scratch.clone().into()],
            )?
            .unwrap_or(false);
            if !taken {
                break scratch;
            }
        };
        Spi::run(&format!(
            "ALTER SCHEMA {} RENAME TO {}",
            identifier(name),
            identifier(&scratch)
        ))?;
        aside.push(scratch);
    }
    let extensions = Spi::get_one_with_args::<Vec<String>>(
        "SELECT COALESCE(pg_catalog.array_agg(e.extname::pg_catalog.text), '{}')
           FROM pg_catalog.pg_extension e
           JOIN pg_catalog.pg_namespace s ON s.oid OPERATOR(pg_catalog.=) e.extnamespace
          WHERE s.nspname OPERATOR(pg_catalog.=) ANY ($1)",
        &[aside.into()],
    )?
    .unwrap_or_default();
    for extension in extensions {
        Spi::run(&format!(
            "DROP EXTENSION {} CASCADE",
            identifier(&extension)
        ))?;
    }
    if let Some(public) = before.pointer("/schemas/public") {
        let empty = serde_json::json!({ "schemas": {} });
        let only_public = serde_json::json!({ "schemas": { "public": public } });
        let defaults = acl_defaults(&[&only_public], role)?;
        let Changes { statements, .. } = statements::changes(&empty, &only_public, role, &defaults);
        for statement in statements {
            Spi::run(&statement)?;
        }
    }
    Ok(())
}

/// Takes the schemas moved aside out of a snapshot of the desired schema: with every user
/// schema compared, they are user schemas too.
fn without_aside(snapshot: &mut Value) {
    let prefix = identifier(SCRATCH);
    let prefix = &prefix[..prefix.len() - 1];
    if let Some(sections) = snapshot.as_object_mut() {
        for section in sections.values_mut() {
            if let Some(objects) = section.as_object_mut() {
                objects.retain(|key, _| !key.starts_with(SCRATCH) && !key.starts_with(prefix));
            }
        }
    }
}

/// `acldefault()` of every kind for `role` and every owner the snapshots name, read at once.
fn acl_defaults(snapshots: &[&Value], role: &str) -> Result<AclDefaults, MigrateError> {
    let owners: Vec<String> = snapshots
        .iter()
        .flat_map(|snapshot| statements::owners(snapshot))
        .chain([role.to_owned()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let kinds: String = ACL_KINDS.iter().collect();
    let rows: Vec<(char, String, Grant)> = store::select_rows(
        "SELECT k.kind, r.rolname::pg_catalog.text,
                CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
                a.privilege_type,
                a.is_grantable,
                pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantor))
           FROM pg_catalog.regexp_split_to_table($1, '') k(kind),
                pg_catalog.pg_roles r,
                pg_catalog.aclexplode(pg_catalog.acldefault(k.kind::\"char\", r.oid)) a
          WHERE r.rolname OPERATOR(pg_catalog.=) ANY ($2)",
        &[kinds.into(), owners.into()],
        |row| {
            let kind: String = row.get(1)?.unwrap_or_default();
            Ok((
                kind.chars().next().unwrap_or_default(),
                row.get(2)?.unwrap_or_default(),
                Grant {
                    grantee: row.get(3)?.unwrap_or_default(),
                    privilege: row.get(4)?.unwrap_or_default(),
                    grantable: row.get(5)?.unwrap_or_default(),
                    grantor: row.get(6)?.unwrap_or_default(),
                },
            ))
        },
    )?;
    let mut defaults = AclDefaults::new();
    for (kind, owner, grant) in rows {
        defaults.entry((kind, owner)).or_default().push(grant);
    }
    Ok(defaults)
}
