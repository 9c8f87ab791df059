//! The servers and databases tests work in: the shared server `scripts/test.sh` starts, a
//! database of a test's own on it, and clusters of a test's own for tests that crash servers.

use std::sync::{Arc, Mutex};

use postgres::{Client, Config, NoTls};

use crate::wait::wait_for;

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
