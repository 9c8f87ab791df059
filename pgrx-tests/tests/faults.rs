//! Faults in the middle of a run (T09-T12): cancel, terminate, a backend killed with SIGKILL
//! (crash recovery), the postmaster killed, a client that disappears. After each: all or nothing
//! (or, for `apply()`, exactly the committed prefix), and the invariant.
//!
//! Every migration of the chain takes and releases a shared advisory lock of its own, 1000 + its
//! number. A test holding that lock exclusively parks the runner inside migration k and sees it
//! parked in `pg_locks`: it knows where the backend is without guessing at time.

use std::process::{Command, Stdio};

use migrations_tests::*;

const CHAIN: usize = 50;

fn lock_key(k: usize) -> i64 {
    1000 + k as i64
}

/// Registers migrations `versions` (as `001`...), each logged (see `assert_invariant`) and
/// parkable.
fn register_parkable(client: &mut Client, versions: std::ops::RangeInclusive<usize>) {
    for i in versions {
        let version = format!("{i:03}");
        let key = lock_key(i);
        let body = logged_body(
            &version,
            &format!(
                "CREATE TABLE t{version} (id int);\n\
                 SELECT pg_advisory_lock_shared({key});\n\
                 SELECT pg_advisory_unlock_shared({key});"
            ),
        );
        register(client, &version, "parkable", &body, None);
    }
}

/// A connection holding migration k's lock: a runner that reaches k waits there.
fn park_at(db: &TestDb, k: usize) -> Client {
    hold_advisory_lock(db, lock_key(k))
}

fn applied_count(client: &mut Client) -> i64 {
    count(client, "SELECT count(*) FROM migrate.applied")
}

/// What a runner call left: the number of applied migrations, and whether any table or log row
/// exists of a migration that is not applied (a half-applied one).
#[track_caller]
fn assert_exactly_prefix(client: &mut Client, prefix: usize) {
    assert_eq!(applied_count(client), prefix as i64, "applied migrations");
    let tables = count(
        client,
        "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname ~ '^t[0-9]{3}$'",
    );
    let logged = count(client, "SELECT count(*) FROM public.applied_log");
    let half_applied = (tables - prefix as i64).max(0) + (logged - prefix as i64).max(0);
    figure(
        "half-applied or twice-applied migrations found",
        half_applied as u64,
    );
    assert_eq!((tables, logged), (prefix as i64, prefix as i64));
}

/// Runs `call` on a new connection parked at migration k, interrupts it there with
/// `interrupt(pid)`, and returns the caller's error.
fn interrupt_at(db: &TestDb, call: &'static str, k: usize, interrupt: &str) -> postgres::Error {
    let holder = park_at(db, k);
    let (pid, running) = start_blocked(db, move |runner| runner.batch_execute(call));
    let mut observer = db.connect();
    let signalled: bool = observer
        .query_one(&format!("SELECT {interrupt}($1)"), &[&pid])
        .unwrap()
        .get(0);
    assert!(signalled);
    figure("faults injected", 1);
    let error = running
        .join()
        .unwrap()
        .expect_err("the interrupted call fails");
    drop(holder);
    // The lock goes with the transaction, so at once for a cancel and as soon as the backend
    // has exited for a terminate.
    wait_for("the runner lock to go", || {
        runner_locks(&mut observer, true) == 0
    });
    error
}

fn expect_interrupted(error: &postgres::Error, interrupt: &str) {
    let code = error.as_db_error().map(|e| e.code().code().to_owned());
    match interrupt {
        "pg_cancel_backend" => assert_eq!(code.as_deref(), Some("57014"), "{error:?}"),
        // A terminated backend may close the connection before its FATAL message arrives.
        _ => assert!(
            code.is_none() || code.as_deref() == Some("57P01"),
            "{error:?}"
        ),
    }
}

#[test]
fn t09_cancel_and_terminate_at_a_random_migration() {
    let db = TestDb::new("t09_interrupts");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register_parkable(&mut client, 1..=CHAIN);
    let mut rng = Rng::from_env("t09");

    // up(): one transaction, so nothing at all is left, wherever the interrupt lands.
    for round in 0..16 {
        let interrupt = ["pg_cancel_backend", "pg_terminate_backend"][round % 2];
        let k = rng.within(1..=CHAIN);
        let error = interrupt_at(&db, "SELECT migrate.up()", k, interrupt);
        expect_interrupted(&error, interrupt);
        assert_exactly_prefix(&mut client, 0);
    }

    // apply(): a commit per migration, so exactly the migrations before k are left.
    let mut applied = 0;
    for round in 0..8 {
        let interrupt = ["pg_cancel_backend", "pg_terminate_backend"][round % 2];
        let k = rng.within(applied + 1..=(applied + 6).min(CHAIN - 1));
        let error = interrupt_at(&db, "CALL migrate.apply()", k, interrupt);
        expect_interrupted(&error, interrupt);
        applied = k - 1;
        assert_exactly_prefix(&mut client, applied);
    }
    assert_invariant(&mut client, (CHAIN - applied) as i32);
}

#[test]
fn t10_a_backend_killed_mid_run_loses_only_its_transaction() {
    let cluster = OwnCluster::start("t10", 54361);
    let db = TestDb::new_on(&cluster.server, "t10_sigkill");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register_parkable(&mut client, 1..=10);
    assert_eq!(call(&mut client, "SELECT migrate.up('001')"), 1);

    // up() parked in migration 5, then apply() parked in migration 8 (4..7 committed).
    for (crash, (call, k, prefix)) in [
        ("SELECT migrate.up()", 5, 1),
        ("CALL migrate.apply()", 8, 7),
    ]
    .into_iter()
    .enumerate()
    {
        let holder = park_at(&db, k);
        let (pid, running) = start_blocked(&db, move |runner| runner.batch_execute(call));
        signal(pid, libc::SIGKILL);
        figure("faults injected", 1);
        assert!(running.join().unwrap().is_err(), "{call}: the call fails");
        drop(holder);
        // The postmaster resets every backend and replays the WAL; until it has noticed the
        // death, a new connection may still be accepted, so the log is what tells.
        let resets = |log: &str| {
            log.matches("all server processes terminated; reinitializing")
                .count()
        };
        wait_for("crash recovery", || {
            resets(&cluster.log()) == crash + 1 && cluster.answers()
        });
        assert_eq!(
            cluster
                .log()
                .matches("terminated by signal 9: Killed")
                .count(),
            crash + 1
        );
        client = db.connect();
        assert_exactly_prefix(&mut client, prefix);
    }
    assert_invariant(&mut client, 3);
}

#[test]
fn t11_the_postmaster_killed_leaves_all_or_nothing() {
    let cluster = OwnCluster::start("t11", 54362);
    let db = TestDb::new_on(&cluster.server, "t11_postmaster");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register_parkable(&mut client, 1..=10);

    // (a) The postmaster alone: the orphaned backend goes on, so the run either finishes and
    // commits or does not commit at all; it is never partly there.
    let holder = park_at(&db, 5);
    let (_, running) = start_blocked(&db, up);
    signal(cluster.postmaster_pid(), libc::SIGKILL);
    figure("faults injected", 1);
    drop(holder);
    let outcome = running.join().unwrap();
    cluster.restart();
    client = db.connect();
    let applied = match outcome {
        Ok(n) => n as usize,
        Err(_) => applied_count(&mut client) as usize,
    };
    assert!(applied == 0 || applied == 10, "all or nothing: {applied}");
    assert_exactly_prefix(&mut client, applied);
    assert_invariant(&mut client, 10 - applied as i32);

    // (b) Every server process at once, the way a power cut stops them: only committed work
    // survives recovery.
    register_parkable(&mut client, 11..=20);
    let holder = park_at(&db, 15);
    let (_, running) = start_blocked(&db, up);
    let postmaster = cluster.postmaster_pid();
    // pg_ctl starts the postmaster as a session leader: its process group is the server.
    // SAFETY: getpgid(2) only reads.
    assert_eq!(unsafe { libc::getpgid(postmaster) }, postmaster);
    signal(-postmaster, libc::SIGKILL);
    figure("faults injected", 1);
    assert!(running.join().unwrap().is_err());
    drop(holder);
    cluster.restart();
    assert!(cluster.log().contains("automatic recovery in progress"));
    client = db.connect();
    assert_exactly_prefix(&mut client, 10);
    assert_invariant(&mut client, 10);
}

#[test]
fn t12_a_client_that_disappears_leaves_all_or_nothing() {
    let db = TestDb::new("t12_disconnect");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register_parkable(&mut client, 1..=10);

    for interval in ["0", "100ms"] {
        let holder = park_at(&db, 5);
        // A client process of its own, killed outright: its socket closes under the backend.
        let mut psql = Command::new(format!("{}/psql", pg_bin()))
            .args(["-X", "-q", "-h", &db.server.host, "-p"])
            .arg(db.server.port.to_string())
            .args(["-U", "postgres", "-d", &db.name, "-c"])
            .arg(format!(
                "SET application_name = 't12'; SET client_connection_check_interval = '{interval}'; SELECT migrate.up()"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start psql");
        let mut observer = db.connect();
        let mut pid = 0;
        wait_for("the client's runner to park", || {
            pid = observer
                .query_opt(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 't12'",
                    &[],
                )
                .unwrap()
                .map_or(0, |row| row.get(0));
            pid != 0 && waiting_for_lock(&mut observer, pid)
        });
        psql.kill().unwrap();
        psql.wait().unwrap();
        figure("faults injected", 1);
        let gone = |observer: &mut Client| {
            count(
                observer,
                &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
            ) == 0
        };
        if interval == "0" {
            // Nothing notices the lost client while the backend waits: it goes on, and fails
            // when it writes its result, before the commit.
            drop(holder);
            wait_for("the backend to end", || gone(&mut observer));
        } else {
            // The connection check ends the backend while it still waits.
            wait_for("the backend to notice", || gone(&mut observer));
            drop(holder);
        }
        wait_for("the runner lock to go", || {
            runner_locks(&mut observer, true) == 0
        });
        let applied = applied_count(&mut client) as usize;
        assert!(applied == 0 || applied == 10, "{interval}: {applied}");
        assert_exactly_prefix(&mut client, applied);
    }
    let applied = applied_count(&mut client) as i32;
    assert_invariant(&mut client, 10 - applied);
}
