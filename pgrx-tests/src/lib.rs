//! Harness for tests of the `migrations` extension against a real PostgreSQL server.
//!
//! `scripts/test.sh` starts a throw-away cluster and passes it in `MIGRATIONS_TEST_PGHOST`
//! (socket directory) and `MIGRATIONS_TEST_PGPORT`; every test works in a database of its own,
//! so tests run in parallel.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub use postgres::error::DbError;
pub use postgres::{Client, Config, NoTls};

fn setting(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test.sh"))
}

/// Directory of the server's programs (pg_dump, psql).
pub fn pg_bin() -> String {
    std::env::var("MIGRATIONS_TEST_PGBIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
}

pub fn host() -> String {
    setting("MIGRATIONS_TEST_PGHOST")
}

pub fn port() -> u16 {
    setting("MIGRATIONS_TEST_PGPORT")
        .parse()
        .expect("MIGRATIONS_TEST_PGPORT is a port number")
}

fn config(dbname: &str, user: &str) -> Config {
    let mut config = Config::new();
    config
        .host_path(host())
        .port(port())
        .user(user)
        .dbname(dbname);
    config
}

/// A database of its own for one test, with the extension installed.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new(name: &str) -> TestDb {
        let db = TestDb::empty(name);
        db.connect()
            .batch_execute("CREATE EXTENSION migrations")
            .expect("CREATE EXTENSION migrations");
        db
    }

    /// A fresh database without the extension.
    pub fn empty(name: &str) -> TestDb {
        let mut admin = config("postgres", "postgres")
            .connect(NoTls)
            .expect("connect to the test server");
        // Two calls: several statements in one simple query share one transaction.
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        admin.batch_execute(&drop).expect("drop the test database");
        let create = format!("CREATE DATABASE {name}");
        admin
            .batch_execute(&create)
            .expect("create the test database");
        TestDb {
            name: name.to_owned(),
        }
    }

    pub fn connect(&self) -> Client {
        self.connect_as("postgres")
    }

    pub fn connect_as(&self, role: &str) -> Client {
        config(&self.name, role)
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("connect as {role}: {e}"))
    }

    /// A connection whose NOTICE messages are collected.
    pub fn connect_with_notices(&self) -> (Client, Arc<Mutex<Vec<String>>>) {
        let notices = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&notices);
        let client = config(&self.name, "postgres")
            .notice_callback(move |notice| sink.lock().unwrap().push(notice.message().to_owned()))
            .connect(NoTls)
            .expect("connect");
        (client, notices)
    }
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

/// `(version, state)` of every migration in `status()` order.
pub fn states(client: &mut Client) -> Vec<(String, String)> {
    client
        .query("SELECT version, state FROM migrate.status()", &[])
        .expect("status")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Whether every registered migration is in `state`.
pub fn all_in_state(client: &mut Client, state: &str) -> bool {
    states(client).iter().all(|(_, s)| s == state)
}

/// Polls until `condition` holds: a condition the server reports, not a guessed delay. The
/// bound only stops a broken test from hanging.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if condition() {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

/// Whether backend `pid` is waiting for an advisory lock (the runner's, or one a body asks for).
pub fn waiting_for_advisory_lock(observer: &mut Client, pid: i32) -> bool {
    observer
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted",
            &[&pid],
        )
        .expect("pg_locks")
        .get::<_, i64>(0)
        == 1
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
