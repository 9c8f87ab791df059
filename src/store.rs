//! Reads and writes of the extension's tables from Rust; `status()` reads them with the query
//! of `sql/status.sql`, the SQL functions `history()` and `verify()` in `sql/finalize.sql`.
//! Every function here runs inside `identity::as_owner`, under `search_path = pg_catalog,
//! pg_temp`. Reads are read-only SPI, which uses the snapshot `lock::lock_runner` made active
//! after the wait (or, once the call has written, a new snapshot per statement): either way a
//! runner that waited sees what its predecessor committed.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::CStr;
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiHeapTupleData, SpiResult};
use pgrx::{PgBuiltInOids, PgOid};

use crate::error::{ErrorParts, MigrateError};
use crate::gucs::{self, Snapshots};
use crate::place::{Body, Lane, Project};
use crate::postgres::catalog;

/// Which release's tables a database holds. A database whose extension is not updated yet
/// keeps working with this library, doing what its tables can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tables {
    /// Before 0.3.0: transactional versioned migrations only.
    Early,
    /// 0.3.0: the lane's columns, and the tables of repeatable migrations.
    Lanes,
    /// 0.4.0: the tenant columns and `migrate.tenant_sets` too.
    Tenants,
    /// 0.5.0: `migrate.snapshots` too.
    Snapshots,
    /// 0.6.0 on: `migrate.file_sets` too.
    FileSets,
}

thread_local! {
    static TABLES: Cell<Option<Tables>> = const { Cell::new(None) };
}

/// The tables of this database, read once per transaction: the update's ALTER TABLE waits for
/// every transaction that has read the tables.
fn tables() -> Tables {
    if let Some(known) = TABLES.get() {
        return known;
    }
    let table = |name: &CStr| catalog::relation(c"migrate", name);
    let has_column = |name: &CStr, column: &CStr| {
        table(name).is_some_and(|relation| catalog::has_column(relation, column))
    };
    let known = if table(c"file_sets").is_some() {
        Tables::FileSets
    } else if table(c"snapshots").is_some() {
        Tables::Snapshots
    } else if has_column(c"applied", c"tenant") {
        Tables::Tenants
    } else if has_column(c"migrations", c"transactional") {
        Tables::Lanes
    } else {
        Tables::Early
    };
    TABLES.set(Some(known));
    known
}

/// Whether the tables know the non-transactional lane and repeatable migrations (0.3.0 on).
fn tables_know_lanes() -> bool {
    tables() >= Tables::Lanes
}

/// Whether the tables know tenants (0.4.0 on).
pub fn tables_know_tenants() -> bool {
    tables() >= Tables::Tenants
}

/// Whether the tables keep snapshots of the catalog (0.5.0 on).
fn tables_keep_snapshots() -> bool {
    tables() >= Tables::Snapshots
}

/// Whether the tables remember the file set `register_files()` last registered (0.6.0 on).
fn tables_remember_file_sets() -> bool {
    tables() >= Tables::FileSets
}

/// The start of a statement that changes what `project` (its `$1`) has registered: it forgets
/// the project's file set, which `files_unchanged()` would otherwise still take for current.
fn registry_change() -> &'static str {
    if tables_remember_file_sets() {
        // control run "the file set kept after a registry change"
        "WITH forgotten AS (DELETE FROM migrate.file_sets f WHERE f.project = $1), "
    } else {
        "WITH "
    }
}

/// What `register_files()` last registered for a project, while nothing registered has changed
/// since: the digest of its files' `sha256sum` listing, and the counts its notice gave.
pub struct FileSet {
    pub digest: String,
    pub migrations: i32,
    pub repeatables: i32,
    pub files: i32,
}

/// Remembers the file set just registered for `project`; nothing before 0.6.0's tables.
pub fn remember_file_set(project: &str, set: &FileSet) -> Result<(), MigrateError> {
    if !tables_remember_file_sets() {
        return Ok(());
    }
    Spi::run_with_args(
        "INSERT INTO migrate.file_sets AS f (project, digest, migrations, repeatables, files)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (project) DO UPDATE
            SET digest = excluded.digest, migrations = excluded.migrations,
                repeatables = excluded.repeatables, files = excluded.files",
        &[
            project.into(),
            set.digest.as_str().into(),
            set.migrations.into(),
            set.repeatables.into(),
            set.files.into(),
        ],
    )?;
    Ok(())
}

/// The file set remembered for `project`, if any.
pub fn file_set(project: &str) -> Result<Option<FileSet>, MigrateError> {
    if !tables_remember_file_sets() {
        return Ok(None);
    }
    select_row(
        "SELECT f.digest, f.migrations, f.repeatables, f.files FROM migrate.file_sets f
          WHERE f.project = $1",
        &[project.into()],
        |row| {
            Ok(FileSet {
                digest: row.get::<String>(1)?.unwrap_or_default(),
                migrations: row.get::<i32>(2)?.unwrap_or_default(),
                repeatables: row.get::<i32>(3)?.unwrap_or_default(),
                files: row.get::<i32>(4)?.unwrap_or_default(),
            })
        },
    )
}

/// Forgets what `tables` read, at the end of each transaction.
pub fn forget_tables() {
    TABLES.set(None);
}

/// The `transactional` column of migration `m`, or what it would hold before it existed.
fn transactional_column() -> &'static str {
    if tables_know_lanes() {
        "m.transactional"
    } else {
        "true"
    }
}

/// The `tenant` column of the history table aliased `alias`, or what it would hold before it
/// existed: a project without tenants.
fn tenant_column(alias: &str) -> String {
    if tables_know_tenants() {
        format!("{alias}.tenant")
    } else {
        "''::text".to_owned()
    }
}

/// The condition that a row of `migrate.applied a` is in `project`'s history (its tenant's, in
/// a tenant), with `$1` and `$2` bound to `history_of(project)`.
fn applied_in_history() -> String {
    format!("a.project = $1 AND {} = $2", tenant_column("a"))
}

/// The two parameters `applied_in_history` names: the project and its tenant key.
fn history_of(project: &Project) -> [DatumWithOid<'_>; 2] {
    [(**project).into(), project.tenant_key().into()]
}

/// `, tenant` and `, $parameter` for an INSERT into a history table, or nothing before the
/// column existed.
fn tenant_insert(parameter: usize) -> (&'static str, String) {
    if tables_know_tenants() {
        (", tenant", format!(", ${parameter}"))
    } else {
        ("", String::new())
    }
}

/// Refuses what only the tables of 0.3.0 on can hold.
fn needs_lane_tables() -> Result<(), MigrateError> {
    if tables_know_lanes() {
        Ok(())
    } else {
        Err(MigrateError::ExtensionNotUpdated {
            needs: "Non-transactional and repeatable migrations need",
        })
    }
}

/// Refuses what only the tables of 0.4.0 on can hold.
pub fn needs_tenant_tables() -> Result<(), MigrateError> {
    if tables_know_tenants() {
        Ok(())
    } else {
        Err(MigrateError::ExtensionNotUpdated {
            needs: "Tenant schemas need",
        })
    }
}

/// The kinds of event in `migrate.events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Register,
    Update,
    Up,
    Down,
    Failed,
    Baseline,
    Adopt,
    Rehearse,
    /// A statement of a non-transactional migration is about to run.
    Started,
    /// A statement of a non-transactional migration ran and was committed.
    Ran,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Register => "register",
            Event::Update => "update",
            Event::Up => "up",
            Event::Down => "down",
            Event::Failed => "failed",
            Event::Baseline => "baseline",
            Event::Adopt => "adopt",
            Event::Rehearse => "rehearse",
            Event::Started => "started",
            Event::Ran => "ran",
        }
    }
}

/// One registered migration with the body a direction needs.
#[derive(Clone, Debug)]
pub struct Migration {
    pub version: String,
    pub name: String,
    /// The up body for applying, the down body (maybe absent) for reverting.
    pub body: Option<String>,
    pub checksum: String,
    pub registered_by: String,
    pub lane: Lane,
    /// A repeatable migration, run as a migration whose version is its name (messages then
    /// read `migration "views" (repeatable)`).
    pub repeatable: bool,
}

/// A registered migration as `register` compares it.
pub struct Registered {
    pub version: String,
    pub name: String,
    pub up_sql: String,
    pub down_sql: Option<String>,
    pub checksum: String,
    pub lane: Lane,
    pub applied: bool,
    /// Some statements of it (non-transactional) have run, not all.
    pub partial: bool,
}

/// A migration as `register` stores it.
pub struct NewMigration<'a> {
    pub project: &'a str,
    pub version: &'a str,
    pub name: &'a str,
    pub up_sql: &'a str,
    pub down_sql: Option<&'a str>,
    pub checksum: &'a str,
    pub version_key: &'a [u8],
    pub lane: Lane,
}

/// How a query is planned: at each run, or once per backend.
#[derive(Clone, Copy)]
enum Planning {
    EachRun,
    /// For a statement a call runs once for each migration it is given: parsing and planning
    /// the lookup again was half of an unchanged `register()`.
    KeptPlan,
}

/// A kept plan, and the types of the arguments it was prepared for.
struct KeptPlan {
    types: Vec<pg_sys::Oid>,
    plan: Rc<OwnedPreparedStatement>,
}

thread_local! {
    /// The kept plans, by statement text: the lookups of registering calls and the reads of
    /// what a body left behind (`leftovers`), which run once per migration. A text varies only
    /// with the release of the tables, so there are a few. The plan cache plans one again when
    /// a table it reads changes, or when the search path differs from the one it was planned
    /// under.
    static KEPT_PLANS: RefCell<HashMap<String, KeptPlan>> = RefCell::default();
}

/// The kept plan of `query` for `args`, prepared on first use, and again if the types of the
/// arguments change. Found without copying the text: it is looked up once per migration.
pub fn kept_plan(
    client: &SpiClient<'_>,
    query: &str,
    args: &[DatumWithOid<'_>],
) -> SpiResult<Rc<OwnedPreparedStatement>> {
    let kept = KEPT_PLANS.with_borrow(|plans| {
        plans
            .get(query)
            .filter(|kept| {
                kept.types
                    .iter()
                    .copied()
                    .eq(args.iter().map(DatumWithOid::oid))
            })
            .map(|kept| Rc::clone(&kept.plan))
    });
    if let Some(plan) = kept {
        return Ok(plan);
    }
    let types: Vec<pg_sys::Oid> = args.iter().map(DatumWithOid::oid).collect();
    let arguments: Vec<PgOid> = types.iter().map(|&oid| PgOid::from(oid)).collect();
    let plan = Rc::new(client.prepare(query, &arguments)?.keep());
    let kept = KeptPlan {
        types,
        plan: Rc::clone(&plan),
    };
    KEPT_PLANS.with_borrow_mut(|plans| plans.insert(query.to_owned(), kept));
    Ok(plan)
}

/// Runs the read-only `query` and gathers one value per row. Runs as whoever calls it: the
/// lane reads the catalog with it as the caller.
pub fn select_rows<T, C: FromIterator<T>>(
    query: &str,
    args: &[DatumWithOid<'_>],
    row: impl Fn(&SpiHeapTupleData<'_>) -> SpiResult<T>,
) -> Result<C, MigrateError> {
    select_rows_planned(query, Planning::EachRun, args, row)
}

fn select_rows_planned<T, C: FromIterator<T>>(
    query: &str,
    planning: Planning,
    args: &[DatumWithOid<'_>],
    row: impl Fn(&SpiHeapTupleData<'_>) -> SpiResult<T>,
) -> Result<C, MigrateError> {
    Ok(Spi::connect(|client| {
        let rows = match planning {
            Planning::EachRun => client.select(query, None, args)?,
            Planning::KeptPlan => client.select(&*kept_plan(client, query, args)?, None, args)?,
        };
        rows.map(|tuple| row(&tuple)).collect::<SpiResult<C>>()
    })?)
}

/// A `Migration` from the columns version, name, body, checksum, registered_by, transactional.
fn migration(row: &SpiHeapTupleData<'_>) -> SpiResult<Migration> {
    Ok(Migration {
        version: row.get(1)?.unwrap_or_default(),
        name: row.get(2)?.unwrap_or_default(),
        body: row.get(3)?,
        checksum: row.get(4)?.unwrap_or_default(),
        registered_by: row.get(5)?.unwrap_or_default(),
        lane: Lane::from_transactional(row.get(6)?.unwrap_or(true)),
        repeatable: false,
    })
}

/// The repeatable migrations of `project` whose body is not the one last run, by name.
pub fn repeatables_due(project: &Project) -> Result<Vec<Migration>, MigrateError> {
    if !tables_know_lanes() {
        return Ok(Vec::new());
    }
    let query = format!(
        "SELECT r.name, r.body, r.checksum, r.registered_by FROM migrate.repeatables r
          WHERE r.project = $1
            AND r.checksum IS DISTINCT FROM (
                SELECT e.checksum FROM migrate.repeatable_events e
                 WHERE e.project = r.project AND e.name = r.name AND e.event = 'reapply'
                   AND {} = $2
                 ORDER BY e.id DESC LIMIT 1)
          ORDER BY r.name COLLATE \"C\"",
        tenant_column("e")
    );
    select_rows(&query, &history_of(project), |row| {
        Ok(Migration {
            version: row.get(1)?.unwrap_or_default(),
            name: "repeatable".to_owned(),
            body: row.get(2)?,
            checksum: row.get(3)?.unwrap_or_default(),
            registered_by: row.get(4)?.unwrap_or_default(),
            lane: Lane::Transactional,
            repeatable: true,
        })
    })
}

/// The body and checksum of the repeatable migration `name` of `project`, if registered.
pub fn registered_repeatable(
    project: &str,
    name: &str,
) -> Result<Option<(String, String)>, MigrateError> {
    needs_lane_tables()?;
    select_row_planned(
        "SELECT r.body, r.checksum FROM migrate.repeatables r WHERE r.project = $1 AND r.name = $2",
        Planning::KeptPlan,
        &[project.into(), name.into()],
        |row| {
            Ok((
                row.get(1)?.unwrap_or_default(),
                row.get(2)?.unwrap_or_default(),
            ))
        },
    )
}

/// Stores the repeatable migration `name` of `project` (`replacing` one registered before),
/// with its event.
pub fn store_repeatable(
    project: &str,
    name: &str,
    body: &str,
    checksum: &str,
    role: &str,
    replacing: bool,
) -> Result<(), MigrateError> {
    let event = if replacing { "update" } else { "register" };
    Spi::run_with_args(
        &format!(
            "{}r AS (
                 INSERT INTO migrate.repeatables AS r (project, name, body, checksum, registered_by)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (project, name) DO UPDATE
                    SET body = excluded.body, checksum = excluded.checksum,
                        registered_by = excluded.registered_by, registered_at = pg_catalog.now()
                 RETURNING project, name, checksum)
             INSERT INTO migrate.repeatable_events (project, name, event, role, checksum)
             SELECT r.project, r.name, $6, $5, r.checksum FROM r",
            registry_change()
        ),
        &[
            project.into(),
            name.into(),
            body.into(),
            checksum.into(),
            role.into(),
            event.into(),
        ],
    )?;
    Ok(())
}

/// Appends an event (`reapply` or `failed`) of a repeatable migration.
fn record_repeatable_event(
    project: &Project,
    migration: &Migration,
    role: &str,
    event: &str,
    duration_ms: Option<f64>,
    detail: Option<&str>,
) -> Result<(), MigrateError> {
    let (column, value) = tenant_insert(8);
    Spi::run_with_args(
        &format!(
            "INSERT INTO migrate.repeatable_events (project, name, event, role, duration_ms, checksum, detail{column})
             VALUES ($1, $2, $3, $4, $5, $6, $7{value})"
        ),
        &[
            (**project).into(),
            migration.version.as_str().into(),
            event.into(),
            role.into(),
            duration_ms.into(),
            migration.checksum.as_str().into(),
            detail.into(),
            project.tenant_key().into(),
        ],
    )?;
    Ok(())
}

/// Records that the repeatable `migration` ran, in `duration_ms`.
fn record_reapplied(
    project: &Project,
    migration: &Migration,
    role: &str,
    duration_ms: f64,
) -> Result<(), MigrateError> {
    record_repeatable_event(project, migration, role, "reapply", Some(duration_ms), None)
}

/// The first column of a row, as text.
fn first_text(row: &SpiHeapTupleData<'_>) -> SpiResult<String> {
    Ok(row.get::<String>(1)?.unwrap_or_default())
}

/// The versions of `project`'s applied migrations (in its tenant).
fn applied_versions(project: &Project) -> Result<HashSet<String>, MigrateError> {
    select_rows(
        &format!(
            "SELECT a.version FROM migrate.applied a WHERE {}",
            applied_in_history()
        ),
        &history_of(project),
        first_text,
    )
}

/// The migrations of `project` named in `versions`, in that order, with their `body`.
fn migrations_named(
    project: &str,
    versions: Vec<String>,
    body: Body,
) -> Result<Vec<Migration>, MigrateError> {
    if versions.is_empty() {
        return Ok(Vec::new());
    }
    let body_column = match body {
        Body::Up => "m.up_sql",
        Body::Down => "m.down_sql",
    };
    let query = format!(
        "SELECT m.version, m.name, {body_column}, m.checksum, m.registered_by, {}
           FROM migrate.migrations m WHERE m.project = $1 AND m.version = ANY($2)",
        transactional_column()
    );
    let mut found: HashMap<String, Migration> =
        select_rows(&query, &[project.into(), versions.clone().into()], |row| {
            let migration = migration(row)?;
            Ok((migration.version.clone(), migration))
        })?;
    Ok(versions
        .iter()
        .filter_map(|version| found.remove(version))
        .collect())
}

// The reads below are single-table scans joined here, not in SQL: planned on the statistics of
// a table that grew since its last ANALYZE (a project registered and applied in bulk, seconds
// before the next start-up), an anti join becomes a nested loop over both tables, quadratic in
// the number of migrations: 3.8 s for a no-op up() of 5,000.

/// Whether every migration of `project` is applied: applied ones are registered ones (a foreign
/// key), so as many applied as registered means none pending. Two counts, no join: the start-up
/// with nothing new reads no version.
fn all_applied(project: &Project) -> Result<bool, MigrateError> {
    Ok(select_row(
        &format!(
            "SELECT (SELECT count(*) FROM migrate.applied a WHERE {})
                  = (SELECT count(*) FROM migrate.migrations m WHERE m.project = $1)",
            applied_in_history()
        ),
        &history_of(project),
        |row| Ok(row.get::<bool>(1)?.unwrap_or_default()),
    )?
    .unwrap_or_default())
}

/// Pending migrations of `project`, in version order, up to `up_to` (a version key) if given.
pub fn pending(project: &Project, up_to: Option<&[u8]>) -> Result<Vec<Migration>, MigrateError> {
    if up_to.is_none() && all_applied(project)? {
        return Ok(Vec::new());
    }
    let applied = applied_versions(project)?;
    let pending: Vec<String> = select_rows::<String, Vec<String>>(
        "SELECT m.version FROM migrate.migrations m
          WHERE m.project = $1 AND ($2::bytea IS NULL OR m.version_key <= $2)
          ORDER BY m.version_key",
        &[(**project).into(), up_to.into()],
        first_text,
    )?
    .into_iter()
    .filter(|version| !applied.contains(version))
    .collect();
    migrations_named(project, pending, Body::Up)
}

/// Applied migrations of `project`, most recently applied first: those above version key
/// `above` when given, at most `limit` when given.
pub fn applied_newest_first(
    project: &Project,
    above: Option<&[u8]>,
    limit: Option<i64>,
) -> Result<Vec<Migration>, MigrateError> {
    let above: Option<HashSet<String>> = above
        .map(|key| {
            select_rows(
                "SELECT m.version FROM migrate.migrations m
                  WHERE m.project = $1 AND m.version_key > $2",
                &[(**project).into(), key.into()],
                first_text,
            )
        })
        .transpose()?;
    let newest_first: Vec<String> = select_rows::<String, Vec<String>>(
        &format!(
            "SELECT a.version FROM migrate.applied a WHERE {} ORDER BY a.event_id DESC",
            applied_in_history()
        ),
        &history_of(project),
        first_text,
    )?
    .into_iter()
    .filter(|version| above.as_ref().is_none_or(|above| above.contains(version)))
    .take(limit.map_or(usize::MAX, |limit| limit as usize))
    .collect();
    migrations_named(project, newest_first, Body::Down)
}

/// The `tenants` of `project` where a migration is not applied, or a repeatable one is due:
/// one read for every tenant. Applied migrations are registered ones (a foreign key), so
/// fewer of them than registered means one is pending.
pub fn tenants_with_pending(
    project: &str,
    tenants: &[String],
) -> Result<HashSet<String>, MigrateError> {
    select_rows(
        "WITH registered AS MATERIALIZED (
             SELECT count(*) AS n FROM migrate.migrations m WHERE m.project = $1)
         SELECT t.tenant FROM pg_catalog.unnest($2::text[]) t(tenant), registered
          WHERE (SELECT count(*) FROM migrate.applied a
                  WHERE a.project = $1 AND a.tenant = t.tenant) < registered.n
             OR EXISTS (SELECT FROM migrate.repeatables r
                         WHERE r.project = $1
                           AND r.checksum IS DISTINCT FROM (
                               SELECT e.checksum FROM migrate.repeatable_events e
                                WHERE e.project = r.project AND e.name = r.name
                                  AND e.tenant = t.tenant AND e.event = 'reapply'
                                ORDER BY e.id DESC LIMIT 1))",
        &[project.into(), tenants.to_vec().into()],
        first_text,
    )
}

/// Whether migrations of `project` are applied in tenant schemas (`in_tenants`), or outside
/// them.
pub fn has_applied(project: &str, in_tenants: bool) -> Result<bool, MigrateError> {
    Ok(select_row(
        "SELECT EXISTS (SELECT FROM migrate.applied a
                         WHERE a.project = $1 AND (a.tenant <> '') = $2)",
        &[project.into(), in_tenants.into()],
        |row| Ok(row.get::<bool>(1)?.unwrap_or_default()),
    )?
    .unwrap_or_default())
}

/// The first row `query` returns, if any.
pub fn select_row<T>(
    query: &str,
    args: &[DatumWithOid<'_>],
    row: impl Fn(&SpiHeapTupleData<'_>) -> SpiResult<T>,
) -> Result<Option<T>, MigrateError> {
    select_row_planned(query, Planning::EachRun, args, row)
}

fn select_row_planned<T>(
    query: &str,
    planning: Planning,
    args: &[DatumWithOid<'_>],
    row: impl Fn(&SpiHeapTupleData<'_>) -> SpiResult<T>,
) -> Result<Option<T>, MigrateError> {
    Ok(
        select_rows_planned::<T, Vec<T>>(query, planning, args, row)?
            .into_iter()
            .next(),
    )
}

/// The applied migration of `project` with the highest version, as (version, version key).
pub fn highest_applied(project: &Project) -> Result<Option<(String, Vec<u8>)>, MigrateError> {
    let query = format!(
        "SELECT m.version, m.version_key
           FROM migrate.applied a
           JOIN migrate.migrations m ON m.project = a.project AND m.version = a.version
          WHERE {}
          ORDER BY m.version_key DESC
          LIMIT 1",
        applied_in_history()
    );
    select_row(&query, &history_of(project), |row| {
        Ok((
            row.get(1)?.unwrap_or_default(),
            row.get(2)?.unwrap_or_default(),
        ))
    })
}

/// The version key of a registered version of `project`.
pub fn version_key(project: &str, version: &str) -> Result<Option<Vec<u8>>, MigrateError> {
    select_row(
        "SELECT m.version_key FROM migrate.migrations m WHERE m.project = $1 AND m.version = $2",
        &[project.into(), version.into()],
        |row| Ok(row.get(1)?.unwrap_or_default()),
    )
}

/// The events of a non-transactional migration about its statements, since the last event
/// that starts its application or revert afresh, of migration `m` (columns `m.project` and
/// `m.version`).
const STATEMENT_EVENTS: &str = "migrate.events e
    WHERE e.project = m.project AND e.version = m.version AND e.statement IS NOT NULL
      AND e.event = ANY ('{started,ran,failed}')
      AND e.id > COALESCE((SELECT max(r.id) FROM migrate.events r
                            WHERE r.project = m.project AND r.version = m.version
                              AND r.event = ANY ('{register,up,down,baseline,adopt}')), 0)";

/// `SELECT` list of a `Registered` (and its version key), from `migrate.migrations m`. Only a
/// non-transactional migration can be partly applied, so only for one are the events read.
fn registered_columns() -> String {
    let lane = if tables_know_lanes() {
        format!("m.transactional, NOT m.transactional AND EXISTS (SELECT FROM {STATEMENT_EVENTS})")
    } else {
        "true, false".to_owned()
    };
    format!(
        "m.version, m.name, m.up_sql, m.down_sql, m.checksum,
         EXISTS (SELECT FROM migrate.applied a WHERE a.project = m.project AND a.version = m.version),
         m.version_key, {lane}"
    )
}

fn registered_row(row: &SpiHeapTupleData<'_>) -> SpiResult<(Vec<u8>, Registered)> {
    Ok((
        row.get(7)?.unwrap_or_default(),
        Registered {
            version: row.get(1)?.unwrap_or_default(),
            name: row.get(2)?.unwrap_or_default(),
            up_sql: row.get(3)?.unwrap_or_default(),
            down_sql: row.get(4)?,
            checksum: row.get(5)?.unwrap_or_default(),
            applied: row.get(6)?.unwrap_or_default(),
            lane: Lane::from_transactional(row.get(8)?.unwrap_or(true)),
            partial: row.get(9)?.unwrap_or_default(),
        },
    ))
}

/// The migration of `project` holding `version_key`, whatever spelling of the version it uses.
pub fn registered(project: &str, version_key: &[u8]) -> Result<Option<Registered>, MigrateError> {
    let query = format!(
        "SELECT {} FROM migrate.migrations m WHERE m.project = $1 AND m.version_key = $2",
        registered_columns()
    );
    Ok(select_row_planned(
        &query,
        Planning::KeptPlan,
        &[project.into(), version_key.into()],
        registered_row,
    )?
    .map(|(_, registered)| registered))
}

/// Every migration registered in `project`, by version key.
pub fn registered_in(project: &str) -> Result<HashMap<Vec<u8>, Registered>, MigrateError> {
    let query = format!(
        "SELECT {} FROM migrate.migrations m WHERE m.project = $1",
        registered_columns()
    );
    select_rows(&query, &[project.into()], registered_row)
}

/// `column` and `value` when the tables have the lane's column (see `tables_know_lanes`), nothing
/// when they do not, where only a transactional `migration` can be stored. Parameters that a
/// statement does not use are fine when their types are given.
fn lane_parts<'a>(
    migration: &NewMigration<'_>,
    column: &'a str,
    value: &'a str,
) -> Result<(&'a str, &'a str), MigrateError> {
    if !migration.lane.is_transactional() {
        needs_lane_tables()?;
    }
    Ok(if tables_know_lanes() {
        (column, value)
    } else {
        ("", "")
    })
}

pub fn insert(migration: &NewMigration<'_>, role: &str) -> Result<(), MigrateError> {
    let (column, value) = lane_parts(migration, ", transactional", ", $10")?;
    Spi::run_with_args(
        &format!(
            "{}m AS (
                 INSERT INTO migrate.migrations (project, version, name, up_sql, down_sql, checksum, version_key, registered_by{column})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8{value})
                 RETURNING project, version, checksum)
             INSERT INTO migrate.events (project, version, event, role, checksum)
             SELECT m.project, m.version, $9, $8, m.checksum FROM m",
            registry_change()
        ),
        &[
            migration.project.into(),
            migration.version.into(),
            migration.name.into(),
            migration.up_sql.into(),
            migration.down_sql.into(),
            migration.checksum.into(),
            migration.version_key.into(),
            role.into(),
            Event::Register.as_str().into(),
            migration.lane.is_transactional().into(),
        ],
    )?;
    Ok(())
}

/// Replaces the bodies, name and lane of a registered migration; `detail` says what changed.
pub fn update(migration: &NewMigration<'_>, role: &str, detail: &str) -> Result<(), MigrateError> {
    let (set_lane, _) = lane_parts(migration, ", transactional = $10", "")?;
    Spi::run_with_args(
        &format!(
            "{}m AS (
                 UPDATE migrate.migrations
                    SET name = $3, up_sql = $4, down_sql = $5, checksum = $6,
                        registered_by = $7, registered_at = pg_catalog.now(){set_lane}
                  WHERE project = $1 AND version = $2
                 RETURNING project, version, checksum)
             INSERT INTO migrate.events (project, version, event, role, checksum, detail)
             SELECT m.project, m.version, $9, $7, m.checksum, $8 FROM m",
            registry_change()
        ),
        &[
            migration.project.into(),
            migration.version.into(),
            migration.name.into(),
            migration.up_sql.into(),
            migration.down_sql.into(),
            migration.checksum.into(),
            role.into(),
            detail.into(),
            Event::Update.as_str().into(),
            migration.lane.is_transactional().into(),
        ],
    )?;
    Ok(())
}

/// Records that `migration` failed with `error`, in its statement `statement` when it is
/// non-transactional; `apply` commits it before raising the error.
pub fn record_failed(
    project: &Project,
    migration: &Migration,
    role: &str,
    error: &ErrorParts,
    statement: Option<usize>,
) -> Result<(), MigrateError> {
    if migration.repeatable {
        let summary = error.summary();
        return record_repeatable_event(project, migration, role, "failed", None, Some(&summary));
    }
    record_statement_event(
        project,
        migration,
        role,
        Event::Failed,
        statement,
        None,
        &error.summary(),
    )
}

/// Records that statement `statement` of the non-transactional `migration` started (`Started`),
/// or ran in `duration_ms` (`Ran`); `detail` says which it is.
pub fn record_statement(
    project: &Project,
    migration: &Migration,
    role: &str,
    event: Event,
    statement: usize,
    duration_ms: Option<f64>,
    detail: &str,
) -> Result<(), MigrateError> {
    record_statement_event(
        project,
        migration,
        role,
        event,
        Some(statement),
        duration_ms,
        detail,
    )
}

fn record_statement_event(
    project: &Project,
    migration: &Migration,
    role: &str,
    event: Event,
    statement: Option<usize>,
    duration_ms: Option<f64>,
    detail: &str,
) -> Result<(), MigrateError> {
    insert_event(
        project,
        &migration.version,
        event,
        role,
        Some(&migration.checksum),
        detail,
        duration_ms,
        statement,
    )
}

/// Appends one row to `migrate.events`.
#[allow(clippy::too_many_arguments)]
fn insert_event(
    project: &Project,
    version: &str,
    event: Event,
    role: &str,
    checksum: Option<&str>,
    detail: &str,
    duration_ms: Option<f64>,
    statement: Option<usize>,
) -> Result<(), MigrateError> {
    // Only a non-transactional migration has statements, and only tables that know the lane
    // hold one (see `tables_know_lanes`).
    let (column, value) = if statement.is_some() && tables_know_lanes() {
        (", statement", ", $8")
    } else {
        ("", "")
    };
    let (tenant, tenant_value) = tenant_insert(9);
    Spi::run_with_args(
        &format!(
            "INSERT INTO migrate.events (project, version, event, role, checksum, detail, duration_ms{column}{tenant})
             VALUES ($1, $2, $3, $4, $5, $6, $7{value}{tenant_value})"
        ),
        &[
            (**project).into(),
            version.into(),
            event.as_str().into(),
            role.into(),
            checksum.into(),
            detail.into(),
            duration_ms.into(),
            statement.map(|number| number as i32).into(),
            project.tenant_key().into(),
        ],
    )?;
    Ok(())
}

/// How far the application (or revert) of a non-transactional migration got, since it was
/// registered, applied or reverted. An update keeps it: only statements that have not run may
/// change (see `registry`).
#[derive(Debug, Default)]
pub struct Progress {
    /// The statements that ran and were committed.
    pub ran: BTreeSet<usize>,
    /// The statements that started and were not seen to end: interrupted.
    pub started: BTreeSet<usize>,
}

pub fn progress(project: &str, version: &str) -> Result<Progress, MigrateError> {
    let query = format!(
        "SELECT e.event, e.statement
           FROM (SELECT $1::text AS project, $2::text AS version) m, {STATEMENT_EVENTS}
          ORDER BY e.id"
    );
    let events: Vec<(String, i32)> =
        select_rows(&query, &[project.into(), version.into()], |row| {
            Ok((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<i32>(2)?.unwrap_or_default(),
            ))
        })?;
    let mut progress = Progress::default();
    for (event, statement) in events {
        let statement = statement as usize;
        // A statement that failed was rolled back (and its INVALID index dropped).
        if event == Event::Started.as_str() {
            progress.started.insert(statement);
        } else {
            progress.started.remove(&statement);
            if event == Event::Ran.as_str() {
                progress.ran.insert(statement);
            }
        }
    }
    Ok(progress)
}

/// Appends one event that is not about applying or reverting a migration.
pub fn record_event(
    project: &Project,
    version: &str,
    event: Event,
    role: &str,
    checksum: Option<&str>,
    detail: &str,
) -> Result<(), MigrateError> {
    insert_event(project, version, event, role, checksum, detail, None, None)
}

/// The version keys of every registered migration of `project`.
pub fn version_keys(project: &str) -> Result<HashSet<Vec<u8>>, MigrateError> {
    select_rows(
        "SELECT m.version_key FROM migrate.migrations m WHERE m.project = $1",
        &[project.into()],
        |row| Ok(row.get::<Vec<u8>>(1)?.unwrap_or_default()),
    )
}

/// The down bodies of `project`'s migrations, by version.
pub fn down_bodies(project: &str) -> Result<HashMap<String, Option<String>>, MigrateError> {
    select_rows(
        "SELECT m.version, m.down_sql FROM migrate.migrations m WHERE m.project = $1",
        &[project.into()],
        |row| {
            Ok((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?,
            ))
        },
    )
}

/// One line per object of the schemas migrations may touch (`sql/catalog.sql`).
pub fn catalog() -> Result<BTreeSet<String>, MigrateError> {
    select_rows(include_str!("../sql/catalog.sql"), &[], |row| {
        Ok(row.get::<String>(1)?.unwrap_or_default())
    })
}

/// Records the outcome of each migration a verb applies or reverts. The rows wait here, in the
/// order the migrations ran, each with the time its migration ended, until `write()` writes them
/// all with one statement: the bookkeeping of each migration (two inserts, their index entries
/// and foreign key checks, planned and run apart) cost more than a trivial body. Every verb
/// writes before it commits or returns, and before anything else it records, which the same
/// sequence numbers. `close()` also stores the catalog the migrations left.
pub struct Recorder {
    up: OwnedPreparedStatement,
    down: OwnedPreparedStatement,
    waiting: RefCell<Waiting>,
    unkept: RefCell<Option<Unkept>>,
    /// The stored snapshot that still describes the catalog while the transaction writes no
    /// catalog row, if one does.
    described: Cell<Option<Described>>,
}

/// A stored snapshot known to describe the catalog as it was when the transaction had written
/// `catalog_writes` catalog rows: a migration that wrote none since leaves the same catalog,
/// which is stored again instead of read.
#[derive(Clone, Copy)]
struct Described {
    snapshot_id: i64,
    catalog_writes: i64,
}

/// The catalog rows the transaction has written so far (inserted, updated and deleted rows of
/// every table in pg_catalog, as its statistics count them), whichever statement wrote them:
/// DDL, a function in C, a body updating a catalog. NULL while `track_counts` is off, which
/// stops the counting.
const CATALOG_WRITES: &str = "
SELECT CASE WHEN pg_catalog.current_setting('track_counts')::pg_catalog.bool THEN
            COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid)
                                    OPERATOR(pg_catalog.+) pg_catalog.pg_stat_get_xact_tuples_updated(c.oid)
                                    OPERATOR(pg_catalog.+) pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid)), 0)::pg_catalog.int8
       END
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
   AND c.relkind OPERATOR(pg_catalog.=) 'r'";

/// Whether the verbs store snapshots: `migrate.snapshots` is not off, and the tables keep them.
fn snapshots_stored() -> bool {
    gucs::snapshots() != Snapshots::Off && tables_keep_snapshots()
}

fn catalog_writes() -> Result<Option<i64>, MigrateError> {
    Ok(Spi::get_one::<i64>(CATALOG_WRITES)?)
}

/// The newest stored snapshot, when no migration that may have changed the catalog ran after
/// it (only registrations, rehearsals and histories marked applied did): it describes the
/// catalog as the migrations left it.
const CURRENT_SNAPSHOT: &str = "
SELECT k.id
  FROM (SELECT s.id FROM migrate.snapshots s ORDER BY s.id DESC LIMIT 1) k
 WHERE NOT EXISTS (SELECT FROM migrate.events e
                    WHERE e.id > k.id AND e.event <> ALL ('{register,update,rehearse,baseline,adopt}'))
   AND NOT EXISTS (SELECT FROM migrate.repeatable_events e
                    WHERE e.id > k.id AND e.event <> ALL ('{register,update}'))";

/// The last migration that ran in a project's own history since the catalog was last stored:
/// the one the next snapshot follows.
struct Unkept {
    project: String,
    version: String,
    role: String,
}

/// Rows waiting in a `Recorder`, as the arrays its statements take: one direction at a time.
#[derive(Default)]
struct Waiting {
    reverted: bool,
    projects: Vec<String>,
    versions: Vec<String>,
    tenants: Vec<String>,
    events: Vec<&'static str>,
    roles: Vec<String>,
    durations: Vec<f64>,
    checksums: Vec<String>,
    ended: Vec<TimestampWithTimeZone>,
}

impl Waiting {
    fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

const TEXT_ARRAY: PgOid = PgOid::BuiltIn(PgBuiltInOids::TEXTARRAYOID);
const FLOAT8_ARRAY: PgOid = PgOid::BuiltIn(PgBuiltInOids::FLOAT8ARRAYOID);
const TIMESTAMPTZ_ARRAY: PgOid = PgOid::BuiltIn(PgBuiltInOids::TIMESTAMPTZARRAYOID);

/// The rows of a `Waiting` as a relation `d`, in their order `n`.
const WAITING: &str = "WITH d AS (
    SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),
                             pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6),
                             pg_catalog.unnest($7), pg_catalog.unnest($8))
             WITH ORDINALITY AS d(project, version, tenant, event, role, duration_ms, checksum, at, n))";

impl Recorder {
    pub fn new() -> Result<Self, MigrateError> {
        let (tenant, d_tenant, e_tenant) = if tables_know_tenants() {
            (", tenant", ", d.tenant", ", e.tenant")
        } else {
            ("", "", "")
        };
        let a_tenant = tenant_column("a");
        let types = [
            TEXT_ARRAY,
            TEXT_ARRAY,
            TEXT_ARRAY,
            TEXT_ARRAY,
            TEXT_ARRAY,
            FLOAT8_ARRAY,
            TEXT_ARRAY,
            TIMESTAMPTZ_ARRAY,
        ];
        let recorder = Spi::connect_mut(|client| {
            let up = client
                .prepare_mut(
                    &format!(
                        "{WAITING},
                         e AS (
                             INSERT INTO migrate.events (project, version, event, role, duration_ms, checksum, at{tenant})
                             SELECT d.project, d.version, d.event, d.role, d.duration_ms, d.checksum, d.at{d_tenant}
                               FROM d ORDER BY d.n
                             RETURNING id, project, version, role, duration_ms, checksum, at{tenant})
                         INSERT INTO migrate.applied (project, version, event_id, applied_at, applied_by, duration_ms, checksum{tenant})
                         SELECT e.project, e.version, e.id, e.at, e.role, e.duration_ms, e.checksum{e_tenant} FROM e"
                    ),
                    &types,
                )?
                .keep();
            let down = client
                .prepare_mut(
                    &format!(
                        "{WAITING},
                         a AS (
                             DELETE FROM migrate.applied a USING d
                              WHERE a.project = d.project AND a.version = d.version AND {a_tenant} = d.tenant
                             RETURNING d.n, a.checksum)
                         INSERT INTO migrate.events (project, version, event, role, duration_ms, checksum, at{tenant})
                         SELECT d.project, d.version, d.event, d.role, d.duration_ms, a.checksum, d.at{d_tenant}
                           FROM d JOIN a ON a.n = d.n ORDER BY d.n"
                    ),
                    &types,
                )?
                .keep();
            Ok::<_, pgrx::spi::Error>(Recorder {
                up,
                down,
                waiting: RefCell::default(),
                unkept: RefCell::default(),
                described: Cell::new(None),
            })
        })?;
        recorder.described.set(Self::described_now()?);
        Ok(recorder)
    }

    /// The stored snapshot that describes the catalog now, with the count of catalog rows
    /// written so far, if one does.
    fn described_now() -> Result<Option<Described>, MigrateError> {
        if !snapshots_stored() {
            return Ok(None);
        }
        let Some(catalog_writes) = catalog_writes()? else {
            return Ok(None);
        };
        let newest = select_row(CURRENT_SNAPSHOT, &[], |row| {
            Ok(row.get::<i64>(1)?.unwrap_or_default())
        })?;
        Ok(newest.map(|snapshot_id| Described {
            snapshot_id,
            catalog_writes,
        }))
    }

    /// Notes `migration` applied in `project`'s history by `role`, by running it in
    /// `duration_ms` (`event` `Up`) or without (`Baseline`, `Adopt`).
    pub fn applied(
        &self,
        project: &Project,
        migration: &Migration,
        role: &str,
        duration_ms: f64,
        event: Event,
    ) -> Result<(), MigrateError> {
        self.note(project, migration, role, duration_ms, event)
    }

    /// Notes `migration` reverted in `project`'s history by `role`, in `duration_ms`.
    pub fn reverted(
        &self,
        project: &Project,
        migration: &Migration,
        role: &str,
        duration_ms: f64,
    ) -> Result<(), MigrateError> {
        self.note(project, migration, role, duration_ms, Event::Down)
    }

    /// Records that the repeatable `migration` ran in `duration_ms`, after the rows waiting,
    /// which the same sequence numbers.
    pub fn reapplied(
        &self,
        project: &Project,
        migration: &Migration,
        role: &str,
        duration_ms: f64,
    ) -> Result<(), MigrateError> {
        self.write()?;
        record_reapplied(project, migration, role, duration_ms)?;
        self.ran(project, migration, role);
        Ok(())
    }

    /// Notes that `migration` ran in `project`, changing the catalog. A tenant's are not kept:
    /// every snapshot describes the tenant schemas too.
    fn ran(&self, project: &Project, migration: &Migration, role: &str) {
        if project.tenant().is_none() {
            self.unkept.replace(Some(Unkept {
                project: (**project).to_owned(),
                version: migration.version.clone(),
                role: role.to_owned(),
            }));
        }
    }

    /// Adds a row; a row of the other direction than those waiting writes them first.
    fn note(
        &self,
        project: &Project,
        migration: &Migration,
        role: &str,
        duration_ms: f64,
        event: Event,
    ) -> Result<(), MigrateError> {
        let reverted = event == Event::Down;
        if self.waiting.borrow().reverted != reverted {
            self.write()?;
        }
        // SAFETY: GetCurrentTimestamp reads the clock, as clock_timestamp() does.
        let ended = TimestampWithTimeZone::try_from(unsafe { pg_sys::GetCurrentTimestamp() })
            .expect("the clock reads a finite time");
        let mut waiting = self.waiting.borrow_mut();
        waiting.reverted = reverted;
        waiting.projects.push((**project).to_owned());
        waiting.versions.push(migration.version.clone());
        waiting.tenants.push(project.tenant_key().to_owned());
        waiting.events.push(event.as_str());
        waiting.roles.push(role.to_owned());
        waiting.durations.push(duration_ms);
        waiting.checksums.push(migration.checksum.clone());
        waiting.ended.push(ended);
        drop(waiting);
        self.ran(project, migration, role);
        Ok(())
    }

    /// Writes the rows waiting and, unless `migrate.snapshots` is off, stores the catalog as the
    /// migrations since the last snapshot left it: where the migrations of a transaction end,
    /// and after each one under `each`.
    pub fn close(&self) -> Result<(), MigrateError> {
        self.write()?;
        let Some(Unkept {
            project,
            version,
            role,
        }) = self.unkept.take()
        else {
            return Ok(());
        };
        if !snapshots_stored() {
            return Ok(());
        }
        let catalog_writes = catalog_writes()?;
        let unchanged = self
            .described
            .get()
            .filter(|described| {
                // control run "the snapshot stored again after a catalog write"
                Some(described.catalog_writes) == catalog_writes
            })
            .map(|described| described.snapshot_id);
        // Materialized: the hash and the value come from one read of the catalog, made only
        // when no stored snapshot describes it.
        let snapshot_id = Spi::get_one_with_args::<i64>(
            "WITH c AS MATERIALIZED (
                 SELECT k.hash, k.snapshot FROM migrate.snapshots k WHERE k.id = $4
                 UNION ALL
                 SELECT NULL, migrate.snapshot()
                  WHERE NOT EXISTS (SELECT FROM migrate.snapshots k WHERE k.id = $4))
             INSERT INTO migrate.snapshots (project, version, hash, snapshot, role)
             SELECT $1, $2,
                    COALESCE(c.hash, pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(c.snapshot::pg_catalog.text, 'UTF8')), 'hex')),
                    c.snapshot, $3
               FROM c
             RETURNING id",
            &[
                project.into(),
                version.into(),
                role.into(),
                unchanged.into(),
            ],
        )?;
        self.described.set(
            snapshot_id
                .zip(catalog_writes)
                .map(|(snapshot_id, catalog_writes)| Described {
                    snapshot_id,
                    catalog_writes,
                }),
        );
        Ok(())
    }

    /// Writes the rows waiting, as the calling identity (the owner's, in every verb).
    pub fn write(&self) -> Result<(), MigrateError> {
        let waiting = self.waiting.take();
        if waiting.is_empty() {
            return Ok(());
        }
        let statement = if waiting.reverted {
            &self.down
        } else {
            &self.up
        };
        let Waiting {
            projects,
            versions,
            tenants,
            events,
            roles,
            durations,
            checksums,
            ended,
            ..
        } = waiting;
        Spi::connect_mut(|client| {
            client
                .update(
                    statement,
                    None,
                    &[
                        projects.into(),
                        versions.into(),
                        tenants.into(),
                        events.into(),
                        roles.into(),
                        durations.into(),
                        checksums.into(),
                        ended.into(),
                    ],
                )
                .map(|_| ())
        })?;
        Ok(())
    }
}
