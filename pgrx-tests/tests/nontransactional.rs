//! The non-transactional lane (N01-N09): `CREATE INDEX CONCURRENTLY` and friends through
//! `CALL migrate.apply()`, on a table of a million rows that other sessions keep writing to;
//! a build cancelled, terminated or killed with SIGKILL half-way; sixteen callers at once;
//! the registrant's rights and nothing more.
//!
//! A build is parked where a test needs it by a writer's open transaction: `CREATE INDEX
//! CONCURRENTLY` commits the INVALID index, then waits for every transaction that writes to the
//! table, which `pg_locks` shows.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use migrations_tests::*;

const ROWS: i64 = 1_000_000;

/// `big` with `rows` rows, and a `log` table that bodies write to.
fn create_tables(client: &mut Client, rows: i64) {
    client
        .batch_execute(&format!(
            "CREATE TABLE big (id bigint PRIMARY KEY, x int NOT NULL, note text NOT NULL);
             INSERT INTO big SELECT g, g % 1000, md5(g::text) FROM generate_series(1, {rows}) g;
             ANALYZE big;
             CREATE TABLE log (version text, who text);"
        ))
        .unwrap();
}

fn register_lane(client: &mut Client, version: &str, name: &str, up: &str, down: Option<&str>) {
    let registered: String = client
        .query_one(
            "SELECT migrate.register($1, $2, $3, $4, transactional => false)",
            &[&version, &name, &up, &down],
        )
        .unwrap_or_else(|e| panic!("register {version}: {e:?}"))
        .get(0);
    assert_eq!(registered, "registered");
}

/// `(valid, name)` of the index named `name` on `big`, if there is one.
fn index(client: &mut Client, name: &str) -> Option<bool> {
    client
        .query_opt(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = 'big'::regclass AND c.relname = $1",
            &[&name],
        )
        .unwrap()
        .map(|row| row.get(0))
}

fn invalid_indexes(client: &mut Client) -> i64 {
    count(
        client,
        "SELECT count(*) FROM pg_index WHERE indrelid = 'big'::regclass AND NOT indisvalid",
    )
}

/// `(event, statement)` of the history of version `version`.
fn journal(client: &mut Client, version: &str) -> Vec<(String, Option<i32>)> {
    client
        .query(
            "SELECT event, statement FROM migrate.history() WHERE version = $1 ORDER BY id",
            &[&version],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn event(name: &str, statement: i32) -> (String, Option<i32>) {
    (name.to_owned(), Some(statement))
}

fn whole(name: &str) -> (String, Option<i32>) {
    (name.to_owned(), None)
}

/// A connection inside a transaction that has written to `big`: a concurrent index build
/// waits for it.
fn open_writer(db: &TestDb) -> Client {
    let mut writer = db.connect();
    writer
        .batch_execute("BEGIN; UPDATE big SET x = x WHERE id = 1")
        .unwrap();
    writer
}

/// Whether backend `pid` waits for another transaction to end (a `virtualxid` lock): where a
/// concurrent index build waits for writers and older snapshots.
fn waits_for_a_transaction(observer: &mut Client, pid: i32) -> bool {
    count(
        observer,
        &format!(
            "SELECT count(*) FROM pg_locks WHERE pid = {pid} AND NOT granted AND locktype = 'virtualxid'"
        ),
    ) == 1
}

/// A database whose migration "1" (non-transactional, `up`) has its `CALL migrate.apply()`
/// parked in an index build: the build committed its INVALID index and waits for `writer`'s
/// open transaction.
struct Parked {
    client: Client,
    observer: Client,
    writer: Client,
    pid: i32,
    running: thread::JoinHandle<Result<(), postgres::Error>>,
}

fn park_build(db: &TestDb, up: &str) -> Parked {
    let mut client = db.connect();
    create_tables(&mut client, 10_000);
    register_lane(&mut client, "1", "build", up, None);
    let mut observer = db.connect();
    let writer = open_writer(db);
    let mut runner = db.connect();
    let pid = backend_pid(&mut runner);
    let running = thread::spawn(move || runner.batch_execute("CALL migrate.apply()"));
    wait_for("the index build to wait for the open writer", || {
        waits_for_a_transaction(&mut observer, pid)
    });
    Parked {
        client,
        observer,
        writer,
        pid,
        running,
    }
}

#[test]
fn n01_a_concurrent_build_of_a_million_rows_never_blocks_the_writers() {
    let db = TestDb::new("n01_writers");
    let mut client = db.connect();
    create_tables(&mut client, ROWS);
    register_lane(
        &mut client,
        "1",
        "index notes",
        "CREATE INDEX CONCURRENTLY big_note ON big (note);\nINSERT INTO log VALUES ('1', current_user);",
        Some("DROP INDEX CONCURRENTLY big_note;"),
    );
    // The same index built the transactional way, as the control: it blocks the writers.
    register(
        &mut client,
        "2",
        "index notes again",
        "CREATE INDEX big_note_2 ON big (note);",
        None,
    );
    let concurrent = stalls_while(&db, "CALL migrate.apply('1')");
    let plain = stalls_while(&db, "SELECT migrate.up('2')");
    assert_eq!(index(&mut client, "big_note"), Some(true));
    assert_eq!(index(&mut client, "big_note_2"), Some(true));
    assert_eq!(count(&mut client, "SELECT count(*) FROM log"), 1);
    figure("rows under a concurrent build", ROWS as u64);
    // The writer kept committing through the concurrent build, and stood still through most
    // of the plain one: the comparison shows the measurement can tell the two apart.
    assert!(
        concurrent.commits_during >= 10,
        "the writer committed {} times during the concurrent build",
        concurrent.commits_during
    );
    assert!(
        concurrent.longest_stall < concurrent.build / 2,
        "longest stall {:?} of a {:?} concurrent build",
        concurrent.longest_stall,
        concurrent.build
    );
    assert!(
        plain.longest_stall > plain.build / 2,
        "longest stall {:?} of a {:?} plain build",
        plain.longest_stall,
        plain.build
    );
}

/// What a writer that keeps updating `big` in small transactions saw while `call` ran.
struct Stalls {
    build: Duration,
    longest_stall: Duration,
    commits_during: usize,
}

fn stalls_while(db: &TestDb, call: &str) -> Stalls {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::new(Barrier::new(2));
    let writer = {
        let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
        let mut client = db.connect();
        thread::spawn(move || {
            let mut commits = Vec::new();
            let mut id = 0i64;
            started.wait();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                id = id % ROWS + 7919;
                client
                    .execute("UPDATE big SET x = x + 1 WHERE id = $1", &[&id])
                    .unwrap();
                commits.push(Instant::now());
            }
            commits
        })
    };
    let mut runner = db.connect();
    started.wait();
    let begun = Instant::now();
    runner.batch_execute(call).unwrap();
    let ended = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let commits = writer.join().unwrap();
    let during: Vec<Instant> = commits
        .iter()
        .copied()
        .filter(|&at| at >= begun && at <= ended)
        .collect();
    let mut marks = vec![begun];
    marks.extend(&during);
    marks.push(ended);
    let longest_stall = marks
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap();
    Stalls {
        build: ended - begun,
        longest_stall,
        commits_during: during.len(),
    }
}

#[test]
fn n02_a_cancelled_build_leaves_no_invalid_index_and_resumes() {
    let db = TestDb::new("n02_cancel");
    let Parked {
        mut client,
        mut observer,
        mut writer,
        pid,
        running,
    } = park_build(
        &db,
        "CREATE INDEX CONCURRENTLY big_x ON big (x);\nCREATE INDEX CONCURRENTLY big_note ON big (note);",
    );
    assert_eq!(
        index(&mut client, "big_x"),
        Some(false),
        "parked after the catalog commit"
    );
    client
        .execute("SELECT pg_cancel_backend($1)", &[&pid])
        .unwrap();
    // The clean-up drops the INVALID index concurrently, which waits for the writer too (and
    // is no index build: pg_stat_progress_create_index has no row for it).
    wait_for("the clean-up to wait for the open writer", || {
        count(
            &mut observer,
            &format!("SELECT count(*) FROM pg_stat_progress_create_index WHERE pid = {pid}"),
        ) == 0
            && waits_for_a_transaction(&mut observer, pid)
    });
    writer.batch_execute("COMMIT").unwrap();
    let error = expect_sqlstate(running.join().unwrap(), "57014");
    assert!(
        error.detail().unwrap().contains("Statement 1 (line 1)"),
        "{:?}",
        error.detail()
    );
    assert_eq!(index(&mut client, "big_x"), None);
    assert_eq!(invalid_indexes(&mut client), 0);
    assert_eq!(states(&mut client), [("1".into(), "failed".into())]);
    assert_eq!(runner_locks(&mut client, true), 0);
    // The next run starts at the statement that did not run.
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(index(&mut client, "big_x"), Some(true));
    assert_eq!(index(&mut client, "big_note"), Some(true));
    assert_eq!(
        journal(&mut client, "1"),
        [
            whole("register"),
            event("started", 1),
            event("failed", 1),
            event("started", 1),
            event("ran", 1),
            event("started", 2),
            event("ran", 2),
            whole("up"),
            whole("snapshot"),
        ]
    );
    figure("faults injected", 1);
}

#[test]
fn n03_a_terminated_build_is_dropped_and_built_again_on_the_next_run() {
    let db = TestDb::new("n03_terminate");
    let Parked {
        mut client,
        mut writer,
        pid,
        running,
        ..
    } = park_build(
        &db,
        "CREATE INDEX CONCURRENTLY big_x ON big (x);\nINSERT INTO log VALUES ('1', current_user);",
    );
    client
        .execute("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .unwrap();
    assert!(running.join().unwrap().is_err());
    writer.batch_execute("COMMIT").unwrap();
    figure("faults injected", 1);
    // Nothing ran past the build, nothing is held, and the books say where it stopped.
    assert_eq!(index(&mut client, "big_x"), Some(false));
    assert_eq!(states(&mut client), [("1".into(), "partial".into())]);
    assert_eq!(runner_locks(&mut client, true), 0);
    assert_eq!(count(&mut client, "SELECT count(*) FROM log"), 0);
    let (mut runner, notices) = db.connect_with_notices();
    runner.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(index(&mut client, "big_x"), Some(true));
    assert_eq!(invalid_indexes(&mut client), 0);
    assert_eq!(count(&mut client, "SELECT count(*) FROM log"), 1);
    assert!(
        notices
            .lock()
            .unwrap()
            .iter()
            .any(|notice| notice.contains("dropped INVALID index public.big_x")),
        "{notices:?}"
    );
    assert_eq!(
        journal(&mut client, "1"),
        [
            whole("register"),
            event("started", 1),
            event("started", 1),
            event("ran", 1),
            event("started", 2),
            event("ran", 2),
            whole("up"),
            whole("snapshot"),
        ]
    );
}

#[test]
fn n04_a_build_killed_with_sigkill_resumes_after_crash_recovery() {
    let cluster = OwnCluster::start("n04", 54371);
    let db = TestDb::new_on(&cluster.server, "n04_sigkill");
    // The writer stays open until the backend is killed.
    let Parked {
        pid,
        running,
        writer: _writer,
        ..
    } = park_build(
        &db,
        "INSERT INTO log VALUES ('1', current_user);\nCREATE INDEX CONCURRENTLY big_x ON big (x);",
    );
    signal(pid, libc::SIGKILL);
    figure("faults injected", 1);
    assert!(running.join().unwrap().is_err());
    wait_for("crash recovery", || {
        cluster
            .log()
            .contains("all server processes terminated; reinitializing")
            && cluster.answers()
    });
    wait_for("the database to accept connections", || {
        db.server
            .config(&db.name, "postgres")
            .connect(NoTls)
            .is_ok()
    });
    let mut client = db.connect();
    assert_eq!(states(&mut client), [("1".into(), "partial".into())]);
    assert_eq!(index(&mut client, "big_x"), Some(false));
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(index(&mut client, "big_x"), Some(true));
    // Statement 1 ran once: the resumed run started at statement 2.
    assert_eq!(count(&mut client, "SELECT count(*) FROM log"), 1);
    assert_eq!(states(&mut client), [("1".into(), "applied".into())]);
}

/// While a build waits, registering callers are not kept waiting, a function caller (which
/// would hold a snapshot the build waits for) is refused, and another `apply()` waits without
/// a snapshot; when the build ends, each migration has run once.
#[test]
fn n05_callers_during_a_build_neither_wait_in_it_nor_block_it() {
    let db = TestDb::new("n05_callers");
    let up =
        "CREATE INDEX CONCURRENTLY big_x ON big (x);\nINSERT INTO log VALUES ('1', current_user);";
    let Parked {
        mut client,
        mut observer,
        mut writer,
        pid: holder,
        running,
    } = park_build(&db, up);
    // Registered during the build, applied by the same call once the build is done.
    register(
        &mut client,
        "2",
        "after",
        "INSERT INTO log VALUES ('2', current_user)",
        None,
    );
    let mut registrar = db.connect();
    let registered: String = registrar
        .query_one(
            "SELECT migrate.register('1', 'build', $1, transactional => false)",
            &[&up],
        )
        .unwrap()
        .get(0);
    assert_eq!(registered, "unchanged");
    let changed = "CREATE INDEX CONCURRENTLY big_y ON big (x);";
    let error = expect_sqlstate(
        registrar.query_one(
            "SELECT migrate.register('1', 'build', $1, transactional => false)",
            &[&changed],
        ),
        "55000",
    );
    assert!(error.message().contains("some of its statements have run"));

    let error = expect_sqlstate(registrar.query_one("SELECT migrate.up()", &[]), "55006");
    assert!(
        error.message().contains(&format!("process {holder}")),
        "{}",
        error.message()
    );

    let mut waiter = db.connect();
    let waiter_pid = backend_pid(&mut waiter);
    let waiting = thread::spawn(move || waiter.batch_execute("CALL migrate.apply()"));
    wait_for("the second apply() to wait for the lane", || {
        count(
            &mut observer,
            &format!(
                "SELECT count(*) FROM pg_locks WHERE pid = {waiter_pid} AND NOT granted
                   AND locktype = 'advisory' AND objid = 1635017985"
            ),
        ) == 1
    });
    assert_eq!(
        count(
            &mut observer,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = {waiter_pid} AND backend_xmin IS NULL"
            ),
        ),
        1,
        "the waiting apply() holds no snapshot"
    );
    writer.batch_execute("COMMIT").unwrap();
    running.join().unwrap().unwrap();
    waiting.join().unwrap().unwrap();
    assert_eq!(index(&mut client, "big_x"), Some(true));
    assert_eq!(
        text_rows(&mut client, &["SELECT version FROM log ORDER BY version"]),
        ["1", "2"]
    );
    assert!(all_in_state(&mut client, "applied"));
}

#[test]
fn n06_sixteen_callers_at_once_apply_each_statement_once() {
    const CALLERS: usize = 16;
    let db = TestDb::new("n06_sixteen");
    let mut client = db.connect();
    create_tables(&mut client, 100_000);
    register(
        &mut client,
        "1",
        "first",
        "INSERT INTO log VALUES ('1', current_user)",
        None,
    );
    register_lane(
        &mut client,
        "2",
        "index",
        "INSERT INTO log VALUES ('2a', current_user);\nCREATE INDEX CONCURRENTLY big_x ON big (x);\nINSERT INTO log VALUES ('2b', current_user);",
        None,
    );
    register(
        &mut client,
        "3",
        "last",
        "INSERT INTO log VALUES ('3', current_user)",
        None,
    );
    let barrier = Arc::new(Barrier::new(CALLERS));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let mut caller = db.connect();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                caller.batch_execute("CALL migrate.apply()")
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap().unwrap();
    }
    figure(
        "concurrent callers of the non-transactional lane",
        CALLERS as u64,
    );
    assert_eq!(
        text_rows(&mut client, &["SELECT version FROM log ORDER BY version"]),
        ["1", "2a", "2b", "3"]
    );
    assert_eq!(index(&mut client, "big_x"), Some(true));
    assert!(all_in_state(&mut client, "applied"));
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'ran'"
        ),
        3
    );
}

/// Statements run as their registrant, never as the caller: a superuser applying what a plain
/// role registered gains that role nothing, and the session is the superuser's again after the
/// statement fails.
#[test]
fn n07_statements_run_as_their_registrant_and_the_session_stays_the_callers() {
    let db = TestDb::new("n07_registrant");
    let mut admin = db.connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS n07_owner; CREATE ROLE n07_owner LOGIN;
             DROP ROLE IF EXISTS n07_stranger; CREATE ROLE n07_stranger LOGIN;
             GRANT USAGE ON SCHEMA migrate TO n07_owner, n07_stranger;
             GRANT EXECUTE ON FUNCTION migrate.register(text, text, text, text, text, boolean) TO n07_owner, n07_stranger;",
        )
        .unwrap();
    create_tables(&mut admin, 1000);
    admin
        .batch_execute(
            "ALTER TABLE big OWNER TO n07_owner; GRANT CREATE ON SCHEMA public TO n07_owner, n07_stranger;
             GRANT INSERT ON log TO n07_owner, n07_stranger",
        )
        .unwrap();
    let mut owner = db.connect_as("n07_owner");
    register_lane(
        &mut owner,
        "1",
        "owner's index",
        "CREATE INDEX CONCURRENTLY big_x ON big (x);\nINSERT INTO log VALUES ('1', current_user);",
        None,
    );
    admin.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(
        text_rows(
            &mut admin,
            &[
                "SELECT who FROM log",
                "SELECT c.relowner::regrole::text FROM pg_class c WHERE relname = 'big_x'"
            ]
        ),
        ["n07_owner", "n07_owner"]
    );
    // A build that fails after its first commit, which it made as the registrant: the session
    // is the superuser's again afterwards.
    register_lane(
        &mut owner,
        "2",
        "owner's failing index",
        "CREATE UNIQUE INDEX CONCURRENTLY big_x_10 ON big ((x % 10));",
        None,
    );
    expect_sqlstate(admin.batch_execute("CALL migrate.apply()"), "23505");
    assert_eq!(index(&mut admin, "big_x_10"), None);
    assert_eq!(
        text_rows(&mut admin, &["SELECT current_user::text"]),
        ["postgres"]
    );
    owner
        .batch_execute("SELECT migrate.register('2', 'owner''s index, fixed', 'SELECT 1', transactional => false)")
        .unwrap();
    admin.batch_execute("CALL migrate.apply()").unwrap();
    // A role without rights on the table: the superuser applying it does not lend them.
    let mut stranger = db.connect_as("n07_stranger");
    register_lane(
        &mut stranger,
        "3",
        "stranger's index",
        "CREATE INDEX CONCURRENTLY big_note ON big (note);",
        None,
    );
    expect_sqlstate(admin.batch_execute("CALL migrate.apply()"), "42501");
    assert_eq!(index(&mut admin, "big_note"), None);
    let row = admin
        .query_one(
            "SELECT current_user::text, session_user::text, (SELECT rolsuper FROM pg_roles WHERE rolname = 'n07_stranger')",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, bool>(2)
        ),
        ("postgres".to_owned(), "postgres".to_owned(), false)
    );
    // The caller's security context is whole again: SET ROLE works as before.
    admin
        .batch_execute("SET ROLE n07_owner; RESET ROLE")
        .unwrap();
    figure("privilege checks passed", 1);
}

/// `up()` and `down()` refuse a non-transactional migration before running anything, with a
/// hint naming the procedure that runs it; `revert()` runs its down body statement by statement.
#[test]
fn n08_one_transaction_refuses_the_lane_and_revert_runs_it_back() {
    let db = TestDb::new("n08_refusals");
    let mut client = db.connect();
    create_tables(&mut client, 1000);
    register(
        &mut client,
        "1",
        "log",
        "INSERT INTO log VALUES ('1', current_user)",
        Some("DELETE FROM log WHERE version = '1'"),
    );
    register_lane(
        &mut client,
        "2",
        "index",
        "CREATE INDEX CONCURRENTLY big_x ON big (x);",
        Some("DROP INDEX CONCURRENTLY big_x;\nVACUUM big;"),
    );
    let error = expect_sqlstate(up(&mut client), "55000");
    assert_eq!(
        error.hint(),
        Some("Apply them with CALL migrate.apply(), outside a transaction block.")
    );
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM log"),
        0,
        "nothing before it ran"
    );
    // Inside a transaction block apply() cannot commit, and refuses the same way.
    expect_sqlstate(
        client.batch_execute("BEGIN; CALL migrate.apply(); COMMIT"),
        "55000",
    );
    client.batch_execute("ROLLBACK").unwrap();
    client.batch_execute("CALL migrate.apply()").unwrap();
    let error = expect_sqlstate(client.query_one("SELECT migrate.down(2)", &[]), "55000");
    assert_eq!(
        error.hint(),
        Some("Revert them with CALL migrate.revert(), outside a transaction block.")
    );
    client.batch_execute("CALL migrate.revert(2)").unwrap();
    assert_eq!(index(&mut client, "big_x"), None);
    assert_eq!(count(&mut client, "SELECT count(*) FROM log"), 0);
    assert!(all_in_state(&mut client, "pending"));
    assert_eq!(
        journal(&mut client, "2")[3..],
        [
            whole("up"),
            whole("snapshot"),
            event("started", 1),
            event("ran", 1),
            event("started", 2),
            event("ran", 2),
            whole("down"),
            whole("snapshot"),
        ]
    );
}

/// A `REINDEX ... CONCURRENTLY` cancelled while it waits leaves no `_ccnew` index; a
/// `DROP INDEX CONCURRENTLY` terminated while it waits is finished by the next run.
#[test]
fn n09_a_rebuild_and_a_drop_that_did_not_finish_leave_no_invalid_index() {
    let db = TestDb::new("n09_rebuild");
    let Parked {
        mut client,
        mut observer,
        mut writer,
        pid,
        running,
    } = park_build(&db, "REINDEX INDEX CONCURRENTLY big_pkey;");
    assert_eq!(
        invalid_indexes(&mut client),
        1,
        "big_pkey_ccnew is being built"
    );
    client
        .execute("SELECT pg_cancel_backend($1)", &[&pid])
        .unwrap();
    wait_for("the clean-up to wait for the open writer", || {
        count(
            &mut observer,
            &format!("SELECT count(*) FROM pg_stat_progress_create_index WHERE pid = {pid}"),
        ) == 0
            && waits_for_a_transaction(&mut observer, pid)
    });
    writer.batch_execute("COMMIT").unwrap();
    expect_sqlstate(running.join().unwrap(), "57014");
    assert_eq!(invalid_indexes(&mut client), 0);
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(invalid_indexes(&mut client), 0);
    assert!(all_in_state(&mut client, "applied"));

    register_lane(
        &mut client,
        "2",
        "index",
        "CREATE INDEX CONCURRENTLY big_x ON big (x);",
        None,
    );
    client.batch_execute("CALL migrate.apply()").unwrap();
    register_lane(
        &mut client,
        "3",
        "drop",
        "DROP INDEX CONCURRENTLY big_x;",
        None,
    );
    let mut writer = open_writer(&db);
    let mut runner = db.connect();
    let pid = backend_pid(&mut runner);
    let running = thread::spawn(move || runner.batch_execute("CALL migrate.apply()"));
    wait_for("the drop to wait for the open writer", || {
        waits_for_a_transaction(&mut observer, pid)
    });
    client
        .execute("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .unwrap();
    assert!(running.join().unwrap().is_err());
    writer.batch_execute("COMMIT").unwrap();
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(index(&mut client, "big_x"), None);
    assert!(all_in_state(&mut client, "applied"));
    figure("faults injected", 2);
}
