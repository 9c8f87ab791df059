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

/// A running PostgreSQL server: the shared one `scripts/test.sh` starts, or a cluster of a test's
/// own (see `OwnCluster`) for tests that crash servers.
#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

impl Server {
    pub fn shared() -> Server {
        Server {
            host: host(),
            port: port(),
        }
    }

    pub fn config(&self, dbname: &str, user: &str) -> Config {
        let mut config = Config::new();
        config
            .host_path(&self.host)
            .port(self.port)
            .user(user)
            .dbname(dbname);
        config
    }
}

/// Runs a client program (`pg_dump`, `pg_restore`, `psql`) of the PostgreSQL in `bin` against
/// `server`, and fails the test when it fails.
pub fn run_client_program(bin: &str, server: &Server, program: &str, args: &[&str]) {
    let output = std::process::Command::new(format!("{bin}/{program}"))
        .args([
            "-h",
            &server.host,
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Everything the extension knows, as text rows, for comparison.
pub fn snapshot(client: &mut Client) -> Vec<String> {
    let queries = [
        "SELECT s::text FROM migrate.status() s",
        "SELECT h::text FROM migrate.history() h",
        "SELECT m::text FROM migrate.migrations m ORDER BY project, version",
        "SELECT a::text FROM migrate.applied a ORDER BY project, version",
    ];
    text_rows(client, &queries)
}

/// A database of its own for one test, with the extension installed.
pub struct TestDb {
    pub name: String,
    pub server: Server,
}

impl TestDb {
    pub fn new(name: &str) -> TestDb {
        TestDb::new_on(&Server::shared(), name)
    }

    pub fn new_on(server: &Server, name: &str) -> TestDb {
        let db = TestDb::empty_on(server, name);
        db.connect()
            .batch_execute("CREATE EXTENSION migrations")
            .expect("CREATE EXTENSION migrations");
        db
    }

    /// A fresh database without the extension.
    pub fn empty(name: &str) -> TestDb {
        TestDb::empty_on(&Server::shared(), name)
    }

    pub fn empty_on(server: &Server, name: &str) -> TestDb {
        let mut admin = server
            .config("postgres", "postgres")
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
            server: server.clone(),
        }
    }

    pub fn connect(&self) -> Client {
        self.connect_as("postgres")
    }

    pub fn connect_as(&self, role: &str) -> Client {
        self.server
            .config(&self.name, role)
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("connect as {role}: {e}"))
    }

    /// A connection whose NOTICE messages are collected.
    pub fn connect_with_notices(&self) -> (Client, Arc<Mutex<Vec<String>>>) {
        let notices = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&notices);
        let client = self
            .server
            .config(&self.name, "postgres")
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

/// Whether backend `pid` is waiting for a lock: the runner lock, one a body asks for, a table.
pub fn waiting_for_lock(observer: &mut Client, pid: i32) -> bool {
    observer
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted",
            &[&pid],
        )
        .expect("pg_locks")
        .get::<_, i64>(0)
        == 1
}

pub fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("pg_backend_pid()")
        .get(0)
}

/// A connection holding advisory lock `key`; a body that asks for it waits until the lock is
/// released or the connection dropped. Tests park runners this way: they then know where the
/// backend is by seeing it wait in `pg_locks`, without guessing at time.
pub fn hold_advisory_lock(db: &TestDb, key: i64) -> Client {
    let mut holder = db.connect();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .expect("pg_advisory_lock");
    holder
}

/// Runs `call` on a new connection in a thread of its own and returns once that connection
/// waits for a lock: its backend's pid, and the thread, whose result is the call's.
pub fn start_blocked<T: Send + 'static>(
    db: &TestDb,
    call: impl FnOnce(&mut Client) -> T + Send + 'static,
) -> (i32, thread::JoinHandle<T>) {
    let mut client = db.connect();
    let pid = backend_pid(&mut client);
    let running = thread::spawn(move || call(&mut client));
    let mut observer = db.connect();
    wait_for("a call waiting for a lock", || {
        waiting_for_lock(&mut observer, pid)
    });
    (pid, running)
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

/// A body whose side effect shows how often it ran: one row in `applied_log` per execution (see
/// `create_applied_log` and `assert_invariant`), after `sql`.
pub fn logged_body(version: &str, sql: &str) -> String {
    let sql = sql.trim_end().trim_end_matches(';');
    format!("{sql};\nINSERT INTO public.applied_log VALUES ('{version}', pg_backend_pid());")
}

pub fn create_applied_log(client: &mut Client) {
    client
        .batch_execute("CREATE TABLE public.applied_log (version text NOT NULL, pid int NOT NULL)")
        .expect("create applied_log");
}

/// The invariant every reliability test ends with, for the default project:
/// (a) the history is consistent: every applied migration has the registry's checksum and was
/// applied by an `up` (or `baseline`) event of its own; the applied set is the one the event log
/// gives; no pending migration sits below the highest applied one;
/// (b) every applied migration's side effect is present exactly once, every other's not at all
/// (bodies made by `logged_body`);
/// (c) no runner lock is left in `pg_locks`;
/// (d) a fresh `up()` applies exactly `remaining`, and a second one nothing.
#[track_caller]
pub fn assert_invariant(client: &mut Client, remaining: i32) {
    assert_history_consistent(client);
    assert_side_effects_once(client);
    assert_eq!(
        runner_locks(client, true),
        0,
        "a runner lock was left behind"
    );
    assert_eq!(runner_locks(client, false), 0, "a runner is still waiting");
    assert_eq!(up(client).expect("fresh up()"), remaining, "a fresh up()");
    assert_eq!(up(client).expect("second up()"), 0, "a second up()");
    assert_history_consistent(client);
    assert_side_effects_once(client);
    figure("invariant checks passed", 1);
}

#[track_caller]
fn assert_history_consistent(client: &mut Client) {
    let problems = text_rows(
        client,
        &[
            "SELECT 'checksum of ' || a.version FROM migrate.applied a
               JOIN migrate.migrations m USING (project, version) WHERE a.checksum <> m.checksum",
            "SELECT 'event of ' || a.version FROM migrate.applied a
               JOIN migrate.events e ON e.id = a.event_id
              WHERE e.version <> a.version OR e.project <> a.project
                 OR e.event NOT IN ('up', 'baseline') OR e.checksum IS DISTINCT FROM a.checksum",
            "SELECT 'event log disagrees on ' || m.version FROM migrate.migrations m
               LEFT JOIN migrate.applied a USING (project, version)
               LEFT JOIN LATERAL (SELECT e.event FROM migrate.events e
                                   WHERE (e.project, e.version) = (m.project, m.version)
                                     AND e.event IN ('up', 'down', 'baseline')
                                   ORDER BY e.id DESC LIMIT 1) last ON true
              WHERE (a.version IS NOT NULL) <> (coalesce(last.event, 'down') <> 'down')",
            "SELECT 'gap at ' || m.version FROM migrate.migrations m
              WHERE NOT EXISTS (SELECT FROM migrate.applied a WHERE (a.project, a.version) = (m.project, m.version))
                AND m.version_key < (SELECT n.version_key FROM migrate.migrations n
                                       JOIN migrate.applied a USING (project, version)
                                      WHERE n.project = m.project
                                      ORDER BY n.version_key DESC LIMIT 1)",
        ],
    );
    assert!(problems.is_empty(), "history inconsistent: {problems:?}");
}

#[track_caller]
fn assert_side_effects_once(client: &mut Client) {
    if !table_exists(client, "public.applied_log") {
        return;
    }
    let wrong = text_rows(
        client,
        &["SELECT m.version || ' ran ' || (SELECT count(*) FROM public.applied_log l WHERE l.version = m.version)
                 || ' times, applied: ' || (a.version IS NOT NULL)
             FROM migrate.migrations m LEFT JOIN migrate.applied a USING (project, version)
            WHERE (SELECT count(*) FROM public.applied_log l WHERE l.version = m.version)
                  <> CASE WHEN a.version IS NULL THEN 0 ELSE 1 END"],
    );
    figure(
        "half-applied or twice-applied migrations found",
        wrong.len() as u64,
    );
    assert!(wrong.is_empty(), "side effects: {wrong:?}");
}

/// Adds `value` to the figure `name` in the file `MIGRATIONS_TEST_FIGURES` names, if any, for
/// `scripts/report.sh`. One line per call; appends of one short line are atomic across tests.
pub fn figure(name: &str, value: u64) {
    use std::io::Write;
    if let Ok(path) = std::env::var("MIGRATIONS_TEST_FIGURES") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the figures file");
        writeln!(file, "{name}\t{value}").expect("write a figure");
    }
}

/// A small deterministic generator (xorshift64*), so a failing case can be replayed from the seed
/// a test prints.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `MIGRATIONS_TEST_SEED` or the clock; prints the seed.
    pub fn from_env(what: &str) -> Rng {
        let seed = std::env::var("MIGRATIONS_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: MIGRATIONS_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `range`.
    pub fn within(&mut self, range: std::ops::RangeInclusive<usize>) -> usize {
        range.start() + (self.next_u64() as usize) % (range.end() - range.start() + 1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.within(0..=items.len() - 1)]
    }
}

/// The repository's root directory.
pub fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A cluster of a test's own, for tests that kill servers: started by `scripts/cluster.sh` beside
/// the shared one, stopped and removed on drop.
pub struct OwnCluster {
    pub dir: String,
    pub server: Server,
}

impl OwnCluster {
    pub fn start(name: &str, port: u16) -> OwnCluster {
        let dir = format!("{}-{name}", host());
        let cluster = OwnCluster {
            server: Server {
                host: dir.clone(),
                port,
            },
            dir,
        };
        cluster.script("stop");
        cluster.script("start");
        cluster
    }

    fn script(&self, action: &str) {
        assert!(self.try_script(action), "cluster.sh {action} {}", self.dir);
    }

    fn try_script(&self, action: &str) -> bool {
        std::process::Command::new("bash")
            .arg(repository().join("scripts/cluster.sh"))
            .args([action, &self.dir, &self.server.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run scripts/cluster.sh")
            .success()
    }

    /// Starts the server again after a crash: `pg_ctl start` refuses while orphaned backends
    /// of the killed postmaster still hold its shared memory, so this retries until they are gone.
    pub fn restart(&self) {
        wait_for("the server to start again", || self.try_script("start"));
    }

    pub fn log_path(&self) -> String {
        format!("{}/server.log", self.dir)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The postmaster's pid, from the first line of `postmaster.pid`.
    pub fn postmaster_pid(&self) -> i32 {
        std::fs::read_to_string(format!("{}/data/postmaster.pid", self.dir))
            .expect("postmaster.pid")
            .lines()
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Whether a new connection gets an answer: the server accepts connections again.
    pub fn answers(&self) -> bool {
        self.server
            .config("postgres", "postgres")
            .connect(NoTls)
            .and_then(|mut client| client.simple_query("SELECT 1"))
            .is_ok()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.script("stop");
    }
}

/// Sends `signal` (`libc::SIGKILL`...) to process `pid`, or to process group `-pid`.
pub fn signal(pid: i32, signal: i32) {
    // Guard against the two values that would reach processes beyond the test's server.
    assert!(pid != 0 && pid != -1, "signal to pid {pid}");
    // SAFETY: kill(2) has no memory effects on this process.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        sent,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}
