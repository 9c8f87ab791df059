//! Several connections at once: every migration applied exactly once, status never blocked.

use std::sync::{Arc, Barrier};
use std::thread;

use migrations_tests::*;

const RUNNERS: usize = 16;
const ROUNDS: usize = 5;
const PER_ROUND: usize = 100;
const SLEEPER: usize = 2 * PER_ROUND + 50;

/// A body of the T01 mix: DDL and DML, DML only, and in round 3 one that sleeps 200 ms, so the
/// other runners pile up behind it.
fn mixed_body(version: &str, i: usize) -> String {
    let sql = match i % 3 {
        _ if i == SLEEPER => "SELECT pg_sleep(0.2)".to_owned(),
        0 => format!("CREATE TABLE t_{version} (id int); INSERT INTO t_{version} VALUES (1)"),
        1 => "UPDATE counter SET n = n + 1".to_owned(),
        _ => format!("CREATE INDEX ON counter ((n + {i}))"),
    };
    logged_body(version, &sql)
}

#[test]
fn t01_sixteen_app_instances_starting_at_once_apply_each_migration_once() {
    let db = TestDb::new("t01_sixteen_runners");
    let mut client = db.connect();
    create_applied_log(&mut client);
    client
        .batch_execute("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)")
        .unwrap();
    let mut clients: Vec<Client> = (0..RUNNERS).map(|_| db.connect()).collect();
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(RUNNERS));
        // What each release's application instances do at start-up: register everything they
        // ship (this round's migrations and all earlier ones), then up().
        let runners: Vec<_> = clients
            .drain(..)
            .map(|mut client| {
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    for i in 0..(round + 1) * PER_ROUND {
                        let version = format!("{:04}", i + 1);
                        register(
                            &mut client,
                            &version,
                            "generated",
                            &mixed_body(&version, i),
                            None,
                        );
                    }
                    let applied = up(&mut client).expect("up() of a runner");
                    (client, applied)
                })
            })
            .collect();
        let applied: Vec<i32> = runners
            .into_iter()
            .map(|runner| {
                let (client, applied) = runner.join().unwrap();
                clients.push(client);
                applied
            })
            .collect();
        figure("concurrent callers", RUNNERS as u64);
        figure("migrations applied by concurrent callers", PER_ROUND as u64);
        assert_eq!(
            applied.iter().sum::<i32>(),
            PER_ROUND as i32,
            "round {round}: per-runner counts {applied:?}"
        );
        // One transaction applied the round: one backend ran every body of it.
        let round_versions = format!(
            "version BETWEEN '{:04}' AND '{:04}'",
            round * PER_ROUND + 1,
            (round + 1) * PER_ROUND
        );
        assert_eq!(
            count(
                &mut client,
                &format!("SELECT count(DISTINCT pid) FROM applied_log WHERE {round_versions}")
            ),
            1
        );
    }
    let duplicates = count(
        &mut client,
        "SELECT count(*) - count(DISTINCT version) FROM applied_log",
    );
    figure("duplicate applications found", duplicates as u64);
    assert_eq!(duplicates, 0);
    assert_eq!(
        count(&mut client, "SELECT n::bigint FROM counter") as usize,
        (0..ROUNDS * PER_ROUND)
            .filter(|&i| i % 3 == 1 && i != SLEEPER)
            .count(),
        "every DML-only body ran once"
    );
    // Applied in version order.
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT version FROM migrate.applied ORDER BY event_id"]
        ),
        text_rows(
            &mut client,
            &["SELECT version FROM migrate.migrations ORDER BY version_key"]
        )
    );
    assert_invariant(&mut client, 0);
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

    let (_, waiter) = start_blocked(&db, up);
    transaction.commit().unwrap();
    assert_eq!(
        waiter.join().unwrap().expect("the waiting runner succeeds"),
        0,
        "and applies nothing twice"
    );
    assert_invariant(&mut db.connect(), 0);
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
    assert_invariant(&mut observer, 0);
}

/// Starts `sql` on a new connection in a thread, and waits until it waits for a lock.
fn start_waiting(
    db: &TestDb,
    sql: &'static str,
) -> thread::JoinHandle<Result<(), postgres::Error>> {
    start_blocked(db, move |client| client.batch_execute(sql)).1
}

/// Registers migrations `versions` with logged bodies; migration `parked` waits on advisory
/// lock 4747 while someone holds it.
fn register_logged(client: &mut Client, versions: std::ops::RangeInclusive<usize>, parked: usize) {
    for i in versions {
        let version = i.to_string();
        let sql = if i == parked {
            "SELECT pg_advisory_lock_shared(4747); SELECT pg_advisory_unlock_shared(4747)"
                .to_owned()
        } else {
            format!("CREATE TABLE l{i} (id int)")
        };
        let down =
            format!("DROP TABLE IF EXISTS l{i}; DELETE FROM applied_log WHERE version = '{i}'");
        register(
            client,
            &version,
            "logged",
            &logged_body(&version, &sql),
            Some(&down),
        );
    }
}

#[test]
fn t03_a_waiting_runner_inside_a_read_committed_transaction_block_applies_nothing_twice() {
    let db = TestDb::new("t03_block");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register_logged(&mut client, 1..=3, 2);
    let mut holder = hold_advisory_lock(&db, 4747);
    let first = start_waiting(&db, "SELECT migrate.up()");
    // The second caller's transaction has already read the state before it waits.
    let second = start_waiting(
        &db,
        "BEGIN; SELECT count(*) FROM migrate.status() WHERE state = 'pending'; SELECT migrate.up(); COMMIT",
    );
    holder
        .batch_execute("SELECT pg_advisory_unlock(4747)")
        .unwrap();
    first.join().unwrap().expect("the first runner");
    second
        .join()
        .unwrap()
        .expect("the second runner, without error");
    assert_invariant(&mut client, 0);
}

#[test]
fn t05_register_up_and_down_interleaved_equal_a_serial_order() {
    let db = TestDb::new("t05_interleave");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register_logged(&mut client, 1..=4, 3);
    assert_eq!(call(&mut client, "SELECT migrate.up('1')"), 1);
    let mut holder = hold_advisory_lock(&db, 4747);
    let running = start_waiting(&db, "SELECT migrate.up()");

    // register() and down() wait for the runner, then see its work: the new migration is
    // pending, not lost and not applied by the run that had started before it, and down()
    // reverts the last migration that run applied. Either order of the two is a serial order.
    let registering = start_waiting(
        &db,
        "SELECT migrate.register('5', 'late', 'CREATE TABLE l5 (id int); INSERT INTO public.applied_log VALUES (''5'', pg_backend_pid())', 'DROP TABLE l5')",
    );
    let reverting = start_waiting(&db, "SELECT migrate.down()");
    holder
        .batch_execute("SELECT pg_advisory_unlock(4747)")
        .unwrap();
    running.join().unwrap().expect("up()");
    registering.join().unwrap().expect("register()");
    reverting.join().unwrap().expect("down()");
    assert_eq!(
        states(&mut client),
        [
            ("1", "applied"),
            ("2", "applied"),
            ("3", "applied"),
            ("4", "pending"),
            ("5", "pending")
        ]
        .map(|(v, s)| (v.to_owned(), s.to_owned()))
    );
    // Below the applied ones: registered, then refused by up() as out of order (55000).
    register_logged(&mut client, 0..=0, 99);
    let error = expect_sqlstate(up(&mut client), "55000");
    assert!(error.detail().unwrap().contains("\"0\""), "{error:?}");
    client
        .batch_execute("SET migrate.allow_out_of_order = on")
        .unwrap();
    assert_eq!(up(&mut client).unwrap(), 3);
    assert_invariant(&mut client, 0);
}

#[test]
fn t06_the_callers_timeouts_bound_the_call_and_leave_nothing() {
    let db = TestDb::new("t06_timeouts");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register_logged(&mut client, 1..=3, 2);
    let mut holder = hold_advisory_lock(&db, 4747);
    let running = start_waiting(&db, "SELECT migrate.up()");

    // A caller's lock_timeout bounds its wait for the runner lock.
    let mut impatient = db.connect();
    impatient
        .batch_execute("SET lock_timeout = '300ms'")
        .unwrap();
    let error = expect_sqlstate(up(&mut impatient), "55P03");
    assert_eq!(error.detail(), Some("Waited 300 ms (lock_timeout)."));
    holder
        .batch_execute("SELECT pg_advisory_unlock(4747)")
        .unwrap();
    running.join().unwrap().expect("the first runner");

    // A caller's statement_timeout cancels a long body: 57014, and nothing of the run remains.
    register_logged(&mut client, 4..=4, 4);
    register_logged(&mut client, 5..=5, 0);
    holder
        .batch_execute("SELECT pg_advisory_lock(4747)")
        .unwrap();
    let mut bounded = db.connect();
    bounded
        .batch_execute("SET statement_timeout = '300ms'")
        .unwrap();
    expect_sqlstate(up(&mut bounded), "57014");
    // A backend sends its error before it aborts and lets go of its locks; it reads the next
    // query only after.
    bounded.batch_execute("SELECT 1").unwrap();
    holder
        .batch_execute("SELECT pg_advisory_unlock(4747)")
        .unwrap();
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM applied_log WHERE version IN ('4', '5')"
        ),
        0
    );
    assert_invariant(&mut client, 2);
}

#[test]
fn t07_a_deadlock_with_an_application_transaction_has_one_victim() {
    let db = TestDb::new("t07_deadlock");
    let mut client = db.connect();
    create_applied_log(&mut client);
    client.batch_execute("CREATE TABLE app_t (id int)").unwrap();
    register(
        &mut client,
        "1",
        "alter app_t",
        &logged_body("1", "ALTER TABLE app_t ADD COLUMN note text"),
        None,
    );
    // The application reads app_t in a transaction; the runner's body then waits for it...
    let mut app = db.connect();
    app.batch_execute("BEGIN; SELECT * FROM app_t").unwrap();
    let runner = start_waiting(&db, "SELECT migrate.up()");
    // ...and the application calls up() in the same transaction: each waits for the other.
    let app_up = thread::spawn(move || {
        let result = app.batch_execute("SELECT migrate.up()");
        let _ = app.batch_execute("COMMIT");
        result
    });
    let results = [runner.join().unwrap(), app_up.join().unwrap()];
    let victims: Vec<Option<String>> = results
        .iter()
        .filter_map(|result| result.as_ref().err())
        .map(|error| error.as_db_error().map(|e| e.code().code().to_owned()))
        .collect();
    assert_eq!(
        victims,
        [Some("40P01".to_owned())],
        "exactly one victim, of a deadlock"
    );
    assert_invariant(&mut client, 0);
}

#[test]
fn t08_create_extension_from_sixteen_sessions_installs_it_once() {
    let db = TestDb::empty("t08_create_race");
    let barrier = Arc::new(Barrier::new(RUNNERS));
    let sessions: Vec<_> = (0..RUNNERS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let mut client = db.connect();
            thread::spawn(move || {
                barrier.wait();
                let first = client
                    .batch_execute("CREATE EXTENSION IF NOT EXISTS migrations")
                    .map_err(|error| error.as_db_error().map(|e| e.code().code().to_owned()));
                // What the documentation asks of a session that lost the race: try again.
                let again = client.batch_execute("CREATE EXTENSION IF NOT EXISTS migrations");
                (first, again.is_ok())
            })
        })
        .collect();
    let outcomes: Vec<_> = sessions.into_iter().map(|s| s.join().unwrap()).collect();
    let winners = outcomes.iter().filter(|(first, _)| first.is_ok()).count();
    assert!(winners >= 1, "{outcomes:?}");
    for (first, again) in &outcomes {
        assert!(again, "a second try succeeds: {outcomes:?}");
        if let Err(code) = first {
            // A unique violation in the catalogs: the losing transaction rolled back whole.
            assert_eq!(code.as_deref(), Some("23505"), "{outcomes:?}");
        }
    }
    let mut client = db.connect();
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_extension WHERE extname = 'migrations'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'migrate'"
        ),
        1
    );
    assert_invariant(&mut client, 0);
}
