//! Projects that fan out over tenant schemas. A project's tenant set (`migrate.tenant_sets`)
//! is a list of schemas or a query that names them; it is resolved when a call starts, so a
//! tenant created since the last run catches up on the next. Each tenant keeps a history of
//! its own (the `tenant` column of the history tables), and its bodies run with `search_path`
//! set to its schema.

use std::collections::HashSet;

use pgrx::prelude::*;

use crate::call::Call;
use crate::error::MigrateError;
use crate::place::Project;
use crate::postgres::identity;
use crate::postgres::lock::LockScope;
use crate::store::{self, select_row, select_rows};

/// The tenants of a project, in order, resolved now.
pub struct TenantSet {
    pub tenants: Vec<String>,
    /// How many of the first tenants are canaries: `apply()` stops before the rest when one
    /// of them fails.
    pub canary: usize,
}

/// A project's tenant set as stored.
struct Stored {
    schemas: Option<Vec<String>>,
    query: Option<String>,
    canary: i32,
    configured_by: String,
}

/// `migrate.set_tenants()`: makes `project` fan out over `schemas`, or over the schemas `query`
/// names, as the caller (who becomes the role the query runs as); returns how many tenants
/// the set names now. Waits for a running migration, so that no run sees half of a change.
pub fn set(
    project: Project,
    schemas: Option<Vec<Option<String>>>,
    query: Option<&str>,
    canary: i32,
) -> Result<i32, MigrateError> {
    let schemas = match (schemas, query) {
        (Some(schemas), None) => Some(schemas.into_iter().collect::<Option<Vec<String>>>().ok_or(
            MigrateError::NullArgument {
                argument: "an element of schemas",
            },
        )?),
        (None, Some(_)) => None,
        _ => return Err(MigrateError::TenantSetArguments),
    };
    if canary < 0 {
        return Err(MigrateError::NegativeCanary { canary });
    }
    let call = Call::locked("migrate.set_tenants()", project, LockScope::Transaction)?;
    call.as_owner(|| {
        store::needs_tenant_tables()?;
        if store::has_applied(&call.project, false)? {
            return Err(MigrateError::TenantHistory {
                project: call.project.clone(),
                in_tenants: false,
            });
        }
        Spi::run_with_args(
            "INSERT INTO migrate.tenant_sets AS t (project, schemas, query, canary, configured_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project) DO UPDATE
                SET schemas = excluded.schemas, query = excluded.query, canary = excluded.canary,
                    configured_by = excluded.configured_by, configured_at = pg_catalog.now()",
            &[
                (*call.project).into(),
                schemas.into(),
                query.into(),
                canary.into(),
                call.role.as_str().into(),
            ],
        )?;
        Ok(())
    })?;
    // Resolved at once, so that a query that fails or a schema that is missing is an error now.
    let set = resolve(&call)?.expect("just stored");
    Ok(set.tenants.len() as i32)
}

/// `migrate.unset_tenants()`: makes `project` a project of one schema again; refused while
/// migrations are applied in its tenants. Returns whether it had a tenant set.
pub fn unset(project: Project) -> Result<bool, MigrateError> {
    let call = Call::locked("migrate.unset_tenants()", project, LockScope::Transaction)?;
    call.as_owner(|| {
        store::needs_tenant_tables()?;
        if store::has_applied(&call.project, true)? {
            return Err(MigrateError::TenantHistory {
                project: call.project.clone(),
                in_tenants: true,
            });
        }
        let deleted = Spi::connect_mut(|client| {
            client
                .update(
                    "DELETE FROM migrate.tenant_sets t WHERE t.project = $1",
                    None,
                    &[(*call.project).into()],
                )
                .map(|table| table.len())
        })?;
        Ok(deleted > 0)
    })
}

/// The tenant set of the call's project, resolved now, or `None` for a project without one:
/// the list or the query's rows, in order, each schema once. Every one must exist: a call
/// runs nothing in any tenant when one is missing.
pub fn resolve(call: &Call) -> Result<Option<TenantSet>, MigrateError> {
    let Some(set) = named(call)? else {
        return Ok(None);
    };
    let missing: Vec<String> = call.as_owner(|| {
        select_rows(
            "SELECT s.name FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY s(name, position)
              WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname = s.name)
              ORDER BY s.position",
            &[set.tenants.clone().into()],
            |row| Ok(row.get::<String>(1)?.unwrap_or_default()),
        )
    })?;
    if missing.is_empty() {
        Ok(Some(set))
    } else {
        Err(MigrateError::MissingTenants {
            project: call.project.clone(),
            schemas: missing,
        })
    }
}

/// The tenants the set names now, whether their schemas exist or not.
fn named(call: &Call) -> Result<Option<TenantSet>, MigrateError> {
    let Some(stored) = call.as_owner(|| stored(&call.project))? else {
        return Ok(None);
    };
    let named = match (stored.schemas, stored.query) {
        (Some(schemas), _) => schemas,
        (None, query) => run_query(
            &call.project,
            query.as_deref().unwrap_or_default(),
            &stored.configured_by,
        )?,
    };
    let mut seen = HashSet::new();
    let tenants: Vec<String> = named
        .into_iter()
        .filter(|tenant| seen.insert(tenant.clone()))
        .collect();
    let canary = (stored.canary as usize).min(tenants.len());
    Ok(Some(TenantSet { tenants, canary }))
}

/// Refuses `function` for a project that fans out over tenants: `what` it does is not done in
/// each tenant yet.
pub fn refuse(function: &'static str, call: &Call, what: &'static str) -> Result<(), MigrateError> {
    if call.as_owner(|| stored(&call.project))?.is_some() {
        Err(MigrateError::NotInTenants {
            function,
            project: call.project.clone(),
            what,
        })
    } else {
        Ok(())
    }
}

fn stored(project: &Project) -> Result<Option<Stored>, MigrateError> {
    if !store::tables_know_tenants() {
        return Ok(None);
    }
    select_row(
        "SELECT t.schemas, t.query, t.canary, t.configured_by FROM migrate.tenant_sets t
          WHERE t.project = $1",
        &[(**project).into()],
        |row| {
            Ok(Stored {
                schemas: row.get(1)?,
                query: row.get(2)?,
                canary: row.get(3)?.unwrap_or_default(),
                configured_by: row.get(4)?.unwrap_or_default(),
            })
        },
    )
}

/// The schemas the tenant query names, in its order: run read-only as the role that set it,
/// never as the caller, who may have more rights, and with `search_path = pg_catalog,
/// pg_temp`, so that the caller's search path changes nothing.
fn run_query(
    project: &Project,
    query: &str,
    configured_by: &str,
) -> Result<Vec<String>, MigrateError> {
    let role =
        identity::role_oid(configured_by).ok_or_else(|| MigrateError::UnknownConfigurer {
            project: project.clone(),
            role: configured_by.to_owned(),
        })?;
    let query = query.trim_end().trim_end_matches(';');
    // The first column, whatever its type (name, text, regnamespace), as text.
    let wrapped = format!("SELECT q.tenant::pg_catalog.text FROM ({query}\n) AS q(tenant)");
    let read = || select_rows(&wrapped, &[], |row| row.get::<String>(1));
    // control run "the tenant query run as the caller"
    let named: Vec<Option<String>> = identity::pinned_as(role, read)?;
    named
        .into_iter()
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| MigrateError::NullTenant {
            project: project.clone(),
        })
}

/// `migrate.tenants()`: the tenant set of `project`, resolved now, with which are canaries;
/// `status()` reads it, and shows a tenant whose schema is missing as having nothing applied.
pub fn list(project: Project) -> Result<Vec<(String, bool)>, MigrateError> {
    let call = Call::reading(project);
    Ok(named(&call)?
        .map(|set| {
            let canary = set.canary;
            set.tenants
                .into_iter()
                .enumerate()
                .map(|(position, tenant)| (tenant, position < canary))
                .collect()
        })
        .unwrap_or_default())
}
