//! `adopt`: takes over a database another tool migrated, by reading that tool's history and
//! marking the registered migrations it applied as applied here.

use pgrx::prelude::*;

use crate::call::Call;
use crate::error::MigrateError;
use crate::place::{Body, Project};
use crate::postgres::lock::LockScope;
use crate::runner;
use crate::store::{self, Event, Migration};
use crate::tenants;
use crate::text::counted;
use crate::version;

/// A tool, the table it keeps its history in (found on the caller's search_path, as the tool
/// finds it), and the query giving the versions it applied.
struct Tool {
    name: &'static str,
    table: &'static str,
    applied: &'static str,
    /// The tool keeps only its current version: everything up to it is applied.
    up_to_current: bool,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "dbmate",
        table: "schema_migrations",
        applied: "SELECT version::text FROM schema_migrations",
        up_to_current: false,
    },
    Tool {
        name: "rails",
        table: "schema_migrations",
        applied: "SELECT version::text FROM schema_migrations",
        up_to_current: false,
    },
    Tool {
        name: "golang-migrate",
        table: "schema_migrations",
        applied: "SELECT version::text FROM schema_migrations WHERE NOT dirty",
        up_to_current: true,
    },
    Tool {
        name: "sqlx",
        table: "_sqlx_migrations",
        applied: "SELECT version::text FROM _sqlx_migrations WHERE success",
        up_to_current: false,
    },
    Tool {
        name: "flyway",
        table: "flyway_schema_history",
        // The latest row of each version says whether it is applied (an undo row says not).
        applied: "SELECT version FROM (
                      SELECT DISTINCT ON (version) version, type, success FROM flyway_schema_history
                       WHERE version IS NOT NULL ORDER BY version, installed_rank DESC) latest
                   WHERE success AND type NOT LIKE 'UNDO%'",
        up_to_current: false,
    },
    Tool {
        name: "goose",
        table: "goose_db_version",
        // The latest row of each version says whether it is applied; version 0 is goose's own.
        applied: "SELECT version_id::text FROM (
                      SELECT DISTINCT ON (version_id) version_id, is_applied FROM goose_db_version
                       ORDER BY version_id, id DESC) latest
                   WHERE is_applied AND version_id <> 0",
        up_to_current: false,
    },
];

/// The versions `tool` applied, read as the caller: adopting needs the right to read the tool's
/// table, and nothing more.
fn applied_versions(tool: &Tool) -> Result<Vec<String>, MigrateError> {
    let found: Option<bool> = Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
                None,
                &[tool.table.into()],
            )?
            .first()
            .get_one()
    })?;
    if found != Some(true) {
        return Err(MigrateError::NoToolHistory {
            tool: tool.name,
            table: tool.table,
        });
    }
    if tool.name == "golang-migrate" {
        let dirty: Option<bool> = Spi::connect(|client| {
            client
                .select("SELECT bool_or(dirty) FROM schema_migrations", None, &[])?
                .first()
                .get_one()
        })?;
        if dirty == Some(true) {
            return Err(MigrateError::DirtyToolHistory { tool: tool.name });
        }
    }
    Ok(Spi::connect(|client| {
        client
            .select(tool.applied, None, &[])?
            .map(|row| Ok(row.get::<String>(1)?.unwrap_or_default()))
            .collect::<pgrx::spi::SpiResult<Vec<_>>>()
    })?)
}

pub fn adopt(project: Project, tool: &str) -> Result<i32, MigrateError> {
    // Another tool's history is of one schema.
    tenants::refuse(
        "migrate.adopt()",
        &Call::reading(project.clone()),
        "adopt another tool's history",
    )?;
    let tool = TOOLS
        .iter()
        .find(|t| t.name == tool)
        .ok_or_else(|| MigrateError::UnknownTool {
            tool: tool.to_owned(),
            known: TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
        })?;
    let applied = applied_versions(tool)?;
    let keys: Vec<Vec<u8>> = applied.iter().map(|v| version::sort_key(v)).collect();
    let mut unmatched = Vec::new();
    let mentioned = project.mention("in");
    let adopted = runner::prepare(
        "migrate.adopt()",
        project,
        LockScope::Transaction,
        Body::Up,
        |project| {
            let registered = store::version_keys(project)?;
            unmatched = applied
                .iter()
                .zip(&keys)
                .filter(|(_, key)| !registered.contains(*key))
                .map(|(version, _)| version.clone())
                .collect();
            let current = keys.iter().max();
            let pending = store::pending(project, None)?;
            Ok(pending
                .into_iter()
                .filter(|migration: &Migration| {
                    let key = version::sort_key(&migration.version);
                    if tool.up_to_current {
                        current.is_some_and(|c| key <= *c)
                    } else {
                        keys.contains(&key)
                    }
                })
                .collect())
        },
    )?;
    if !unmatched.is_empty() {
        notice!(
            "{} that {} applied {} no registered migration{}: {}",
            counted(unmatched.len(), "version"),
            tool.name,
            if unmatched.len() == 1 { "has" } else { "have" },
            mentioned,
            unmatched.join(", ")
        );
    }
    match adopted {
        Some(prepared) => runner::mark_applied(prepared, Event::Adopt),
        None => Ok(0),
    }
}
