//! Several connections at once: every migration applied exactly once, status never blocked.

use std::sync::{Arc, Barrier};
use std::thread;

use migrations_tests::*;

const RUNNERS: usize = 16;
const MIGRATIONS: usize = 200;

#[test]
fn sixteen_app_instances_starting_at_once_apply_each_migration_once() {
    let db = TestDb::new("sixteen_runners");
    db.connect()
        .batch_execute("CREATE TABLE applied_log (version text, pid int)")
        .unwrap();
    let barrier = Arc::new(Barrier::new(RUNNERS));
    let runners: Vec<_> = (0..RUNNERS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let mut client = db.connect();
            thread::spawn(move || {
                barrier.wait();
                // What an application does at start-up: register everything it ships, then up().
                for i in 1..=MIGRATIONS {
                    let version = format!("{i:04}");
                    let body = format!(
                        "CREATE TABLE t_{version} (id int);\nINSERT INTO applied_log VALUES ('{version}', pg_backend_pid());"
                    );
                    register(&mut client, &version, "generated", &body, None);
                }
                up(&mut client).expect("up() of a runner")
            })
        })
        .collect();
    let applied: Vec<i32> = runners
        .into_iter()
        .map(|runner| runner.join().unwrap())
        .collect();

    assert_eq!(
        applied.iter().sum::<i32>(),
        MIGRATIONS as i32,
        "per-runner counts: {applied:?}"
    );
    let mut client = db.connect();
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM applied_log"),
        MIGRATIONS as i64
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(DISTINCT version) FROM applied_log"
        ),
        MIGRATIONS as i64
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_class WHERE relname LIKE 't\\_%' AND relkind = 'r'"
        ),
        MIGRATIONS as i64
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'register'"
        ),
        MIGRATIONS as i64
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'up'"
        ),
        MIGRATIONS as i64
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.status() WHERE state = 'applied'"
        ),
        MIGRATIONS as i64
    );
    assert_eq!(
        runner_locks(&mut client, true) + runner_locks(&mut client, false),
        0,
        "no lock left"
    );
    assert_eq!(up(&mut client).unwrap(), 0);
}

#[test]
fn a_runner_that_waited_sees_what_the_first_one_applied() {
    let db = TestDb::new("waiting_runner");
    let mut first = db.connect();
    for i in 1..=3 {
        register(
            &mut first,
            &i.to_string(),
            "one",
            &format!("CREATE TABLE w{i} ()"),
            None,
        );
    }
    let mut transaction = first.transaction().unwrap();
    assert_eq!(call(&mut transaction, "SELECT migrate.up()"), 3);

    let mut second = db.connect();
    let second_pid: i32 = second
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let waiter = thread::spawn(move || up(&mut second));
    wait_for("a runner waiting for a lock", || {
        waiting_for_advisory_lock(&mut db.connect(), second_pid)
    });
    transaction.commit().unwrap();
    assert_eq!(
        waiter.join().unwrap().expect("the waiting runner succeeds"),
        0,
        "and applies nothing twice"
    );
}

#[test]
fn status_answers_while_a_runner_holds_the_lock() {
    let db = TestDb::new("status_unblocked");
    let mut runner = db.connect();
    register(&mut runner, "1", "one", "CREATE TABLE one ()", None);
    let mut transaction = runner.transaction().unwrap();
    transaction.query_one("SELECT migrate.up()", &[]).unwrap();

    let mut observer = db.connect();
    assert_eq!(runner_locks(&mut observer, true), 1);
    // A bound so that a status() that waited fails instead of hanging.
    observer
        .batch_execute("SET statement_timeout = '10s'")
        .unwrap();
    assert_eq!(
        states(&mut observer),
        vec![("1".to_owned(), "pending".to_owned())],
        "uncommitted work is invisible"
    );
    transaction.commit().unwrap();
    assert_eq!(
        states(&mut observer),
        vec![("1".to_owned(), "applied".to_owned())]
    );
}
