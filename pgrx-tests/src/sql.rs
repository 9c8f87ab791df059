//! Calling the extension and reading what it answers.

use postgres::Client;
use postgres::error::DbError;

/// The migrations table as text rows, in the columns every release since 0.1.0 has.
pub const REGISTRY: &str = "SELECT (m.project, m.version, m.name, m.up_sql, m.down_sql, m.checksum,
        m.version_key, m.registered_by, m.registered_at)::text
   FROM migrate.migrations m ORDER BY m.project, m.version";

/// The history as text rows, in the columns every release since 0.1.0 has.
pub const HISTORY: &str = "SELECT (h.id, h.project, h.version, h.event, h.role, h.at,
        h.duration_ms, h.checksum, h.detail)::text
   FROM migrate.history() h";

/// Everything the extension knows, as text rows, for comparison: in the columns every release
/// has, so that a database of an earlier release compares with itself updated or restored.
pub fn snapshot(client: &mut Client) -> Vec<String> {
    let queries = [
        "SELECT (s.project, s.version, s.name, s.state, s.applied_at, s.applied_by, s.duration_ms,
                 s.checksum)::text
           FROM migrate.status() s",
        HISTORY,
        REGISTRY,
        "SELECT (a.project, a.version, a.event_id, a.applied_at, a.applied_by, a.duration_ms, a.checksum)::text
           FROM migrate.applied a ORDER BY project, version",
    ];
    text_rows(client, &queries)
}

/// Whether the columns a release added hold what an earlier release's rows mean: every
/// migration transactional, no event about a statement, nothing in a tenant.
pub fn later_columns_hold_defaults(client: &mut Client) -> bool {
    count(
        client,
        "SELECT (SELECT count(*) FROM migrate.migrations WHERE NOT transactional)
              + (SELECT count(*) FROM migrate.events WHERE statement IS NOT NULL OR tenant <> '')
              + (SELECT count(*) FROM migrate.applied WHERE tenant <> '')",
    ) == 0
}

/// The server error of a failed call, failing the test if the call succeeded or failed otherwise.
pub fn server_error<T: std::fmt::Debug>(result: Result<T, postgres::Error>) -> DbError {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error
            .as_db_error()
            .unwrap_or_else(|| panic!("not a server error: {error}"))
            .clone(),
    }
}

/// Asserts the SQLSTATE of a failed call and returns the error for further checks.
#[track_caller]
pub fn expect_sqlstate<T: std::fmt::Debug>(
    result: Result<T, postgres::Error>,
    sqlstate: &str,
) -> DbError {
    let error = server_error(result);
    assert_eq!(
        error.code().code(),
        sqlstate,
        "message: {}, detail: {:?}, hint: {:?}",
        error.message(),
        error.detail(),
        error.hint()
    );
    error
}

pub fn register(
    client: &mut Client,
    version: &str,
    name: &str,
    up: &str,
    down: Option<&str>,
) -> String {
    client
        .query_one(
            "SELECT migrate.register($1, $2, $3, $4)",
            &[&version, &name, &up, &down],
        )
        .unwrap_or_else(|e| panic!("register {version}: {e:?}"))
        .get(0)
}

pub fn up(client: &mut Client) -> Result<i32, postgres::Error> {
    client
        .query_one("SELECT migrate.up()", &[])
        .map(|row| row.get(0))
}

/// The integer a runner call (`SELECT migrate.up(...)`, `down`, `down_to`) returns.
pub fn call(client: &mut impl postgres::GenericClient, query: &str) -> i32 {
    client
        .query_one(query, &[])
        .unwrap_or_else(|e| panic!("{query}: {e:?}"))
        .get(0)
}

pub fn count(client: &mut Client, query: &str) -> i64 {
    client
        .query_one(query, &[])
        .unwrap_or_else(|e| panic!("{query}: {e:?}"))
        .get(0)
}

/// The rows of `queries`, each of which selects one text column, one after the other.
pub fn text_rows(client: &mut Client, queries: &[&str]) -> Vec<String> {
    queries
        .iter()
        .flat_map(|query| {
            client
                .query(*query, &[])
                .unwrap_or_else(|e| panic!("{query}: {e:?}"))
        })
        .map(|row| row.get::<_, String>(0))
        .collect()
}

/// `(version, state)` of every versioned migration in `status()` order.
pub fn states(client: &mut Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT version, state FROM migrate.status() WHERE version IS NOT NULL",
            &[],
        )
        .expect("status")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Whether every registered migration is in `state`.
pub fn all_in_state(client: &mut Client, state: &str) -> bool {
    states(client).iter().all(|(_, s)| s == state)
}

pub fn table_exists(client: &mut Client, table: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .expect("to_regclass")
        .get(0)
}

/// Counts this database's runner locks in `pg_locks` (granted or waiting, by `granted`); the key
/// is documented in the README.
pub fn runner_locks(client: &mut Client, granted: bool) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_locks
              WHERE locktype = 'advisory' AND classid = 1835624306 AND objid = 1635017984 AND objsubid = 1
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND granted = $1",
            &[&granted],
        )
        .expect("pg_locks")
        .get(0)
}
