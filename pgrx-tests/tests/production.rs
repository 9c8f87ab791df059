//! Safe in production: per-migration commits, lock timeouts with retries, the runner-wait bound,
//! and the enum trap.

use std::sync::{Arc, Mutex};
use std::thread;

use migrations_tests::*;

fn register_chain(client: &mut Client, n: usize, failing: usize) {
    for i in 1..=n {
        let body = if i == failing {
            format!("CREATE TABLE p{i} ();\nINSERT INTO p{i} DEFAULT VALUES;\nSELECT 1 / 0;")
        } else {
            format!("CREATE TABLE p{i} ()")
        };
        register(
            client,
            &format!("{i:02}"),
            &format!("step {i}"),
            &body,
            None,
        );
    }
}

#[test]
fn apply_commits_each_migration_and_records_a_failure() {
    let db = TestDb::new("apply_failure");
    let mut client = db.connect();
    register_chain(&mut client, 10, 7);
    let error = expect_sqlstate(client.batch_execute("CALL migrate.apply()"), "22012");
    assert_eq!(error.message(), "division by zero");
    assert_eq!(
        error.detail(),
        Some("Statement 3 (line 3) of the up body of migration \"07\" (step 7).")
    );

    let states = states(&mut client);
    let expected: Vec<(String, String)> = (1..=10)
        .map(|i| {
            let state = match i {
                1..=6 => "applied",
                7 => "failed",
                _ => "pending",
            };
            (format!("{i:02}"), state.to_owned())
        })
        .collect();
    assert_eq!(states, expected);
    for i in 1..=6 {
        assert!(
            table_exists(&mut client, &format!("p{i}")),
            "p{i} was committed"
        );
    }
    assert!(
        !table_exists(&mut client, "p7"),
        "the failed migration was rolled back alone"
    );
    let detail: String = client
        .query_one(
            "SELECT detail FROM migrate.history() WHERE event = 'failed'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        detail,
        "SQLSTATE 22012: division by zero\nStatement 3 (line 3) of the up body of migration \"07\" (step 7)."
    );
    assert_eq!(
        runner_locks(&mut client, true),
        0,
        "the lock is released on error"
    );

    // Still failed after another failing attempt; pending once its body is replaced.
    expect_sqlstate(client.batch_execute("CALL migrate.apply()"), "22012");
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'failed'"
        ),
        2
    );
    register(&mut client, "07", "step 7", "CREATE TABLE p7 ()", None);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.status() WHERE state = 'failed'"
        ),
        0
    );
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.status() WHERE state = 'applied'"
        ),
        10
    );
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'up'"
        ),
        10
    );
}

#[test]
fn apply_inside_a_transaction_block_is_all_or_nothing() {
    let db = TestDb::new("apply_atomic");
    let mut client = db.connect();
    register_chain(&mut client, 5, 4);
    let mut transaction = client.transaction().unwrap();
    expect_sqlstate(transaction.batch_execute("CALL migrate.apply()"), "22012");
    transaction.rollback().unwrap();
    assert!(all_in_state(&mut client, "pending"));
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event <> 'register'"
        ),
        0
    );

    register(&mut client, "04", "step 4", "CREATE TABLE p4 ()", None);
    let mut transaction = client.transaction().unwrap();
    transaction.batch_execute("CALL migrate.apply()").unwrap();
    transaction.rollback().unwrap();
    assert!(
        !table_exists(&mut client, "p1"),
        "the caller's rollback undid everything"
    );
}

#[test]
fn apply_interrupted_keeps_the_committed_prefix_and_frees_the_lock() {
    let db = TestDb::new("apply_interrupted");
    let mut setup = db.connect();
    for i in 1..=5 {
        let body = if i == 4 {
            "CREATE TABLE q4 (); SELECT pg_advisory_lock(4343); SELECT pg_advisory_unlock(4343);"
                .to_owned()
        } else {
            format!("CREATE TABLE q{i} ()")
        };
        register(&mut setup, &i.to_string(), "step", &body, None);
    }
    let mut holder = hold_advisory_lock(&db, 4343);
    // The runner waits in migration 4.
    let (pid, running) = start_blocked(&db, |runner| runner.batch_execute("CALL migrate.apply()"));
    let mut observer = db.connect();
    assert_eq!(
        runner_locks(&mut observer, true),
        1,
        "apply holds the runner lock across its commits"
    );
    let observed: Vec<String> = states(&mut observer)
        .into_iter()
        .filter(|(_, s)| s == "applied")
        .map(|(v, _)| v)
        .collect();
    assert_eq!(
        observed,
        ["1", "2", "3"],
        "each migration is visible as soon as it commits"
    );

    observer
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    assert!(running.join().unwrap().is_err());
    wait_for("the lock to go", || runner_locks(&mut observer, true) == 0);
    assert!(!table_exists(&mut observer, "q4"));
    holder
        .batch_execute("SELECT pg_advisory_unlock(4343)")
        .unwrap();
    setup.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(
        count(
            &mut setup,
            "SELECT count(*) FROM migrate.history() WHERE event = 'up'"
        ),
        5
    );
}

/// Whether the column the lock tests' migrations add to `busy` is there: 0 or 1.
const NOTE_COLUMN: &str = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy' AND column_name = 'note'";

/// Takes, until the transaction ends, a lock on `busy` that every ALTER TABLE of it waits for.
fn lock_busy(holder: &mut Client) -> postgres::Transaction<'_> {
    let mut holding = holder.transaction().unwrap();
    holding
        .batch_execute("LOCK TABLE busy IN ACCESS SHARE MODE")
        .unwrap();
    holding
}

/// The NOTICEs a session received, in order.
type Notices = Arc<Mutex<Vec<String>>>;

/// Starts `up()` in a session of its own, after `settings`, and returns once a body of it has
/// failed to get a lock: the running call, and the NOTICEs it sends.
fn up_waiting_for_a_lock(
    db: &TestDb,
    settings: &str,
) -> (thread::JoinHandle<Result<i32, postgres::Error>>, Notices) {
    let (mut runner, notices) = db.connect_with_notices();
    runner.batch_execute(settings).unwrap();
    let running = thread::spawn(move || up(&mut runner));
    wait_for("the first failed attempt", || {
        notices
            .lock()
            .unwrap()
            .iter()
            .any(|notice| notice.contains("could not get a lock"))
    });
    (running, notices)
}

#[test]
fn a_migration_that_cannot_get_its_lock_fails_with_55p03_and_retries() {
    let db = TestDb::new("lock_timeout");
    let mut client = db.connect();
    client.batch_execute("CREATE TABLE busy (id int)").unwrap();
    register(
        &mut client,
        "1",
        "alter busy",
        "ALTER TABLE busy ADD COLUMN note text",
        None,
    );
    let mut holder = db.connect();
    let holding = lock_busy(&mut holder);

    // Without retries: one attempt, then 55P03 naming the migration.
    client
        .batch_execute("SET migrate.lock_timeout = '100ms'; SET migrate.lock_retries = 0")
        .unwrap();
    let error = expect_sqlstate(up(&mut client), "55P03");
    assert_eq!(
        error.message(),
        "migration \"1\" (alter busy) could not get a lock within 100 ms in 1 attempt"
    );
    // With retries, each attempt is reported, and the last failure names the count.
    client
        .batch_execute("SET migrate.lock_retries = 2")
        .unwrap();
    let error = expect_sqlstate(up(&mut client), "55P03");
    assert_eq!(
        error.message(),
        "migration \"1\" (alter busy) could not get a lock within 100 ms in 3 attempts"
    );
    assert_eq!(
        count(&mut client, NOTE_COLUMN),
        0,
        "nothing of the failed attempts remains"
    );
    assert_eq!(states(&mut client)[0].1, "pending");

    // A retry succeeds when the other session lets go in time: it lets go as soon as the
    // first attempt has failed.
    let (running, notices) = up_waiting_for_a_lock(
        &db,
        "SET migrate.lock_timeout = '200ms'; SET migrate.lock_retries = 5",
    );
    holding.commit().unwrap();
    assert_eq!(running.join().unwrap().unwrap(), 1);
    let first = notices.lock().unwrap()[0].clone();
    assert_eq!(
        first,
        "migration \"1\" (alter busy) could not get a lock within 200 ms (attempt 1 of 6); trying again in 100 ms"
    );
    assert_eq!(count(&mut client, NOTE_COLUMN), 1);
}

#[test]
fn a_lock_timeout_after_other_migrations_runs_them_again_with_a_savepoint_each() {
    let db = TestDb::new("lock_timeout_later");
    let mut client = db.connect();
    client
        .batch_execute("CREATE TABLE busy (id int); CREATE TABLE log (n int)")
        .unwrap();
    register(
        &mut client,
        "1",
        "log one",
        "INSERT INTO log VALUES (1)",
        None,
    );
    register(
        &mut client,
        "2",
        "log two",
        "INSERT INTO log VALUES (2)",
        None,
    );
    register(
        &mut client,
        "3",
        "alter busy",
        "ALTER TABLE busy ADD COLUMN note text",
        None,
    );
    register(
        &mut client,
        "4",
        "log four",
        "INSERT INTO log VALUES (4)",
        None,
    );
    let mut holder = db.connect();
    let holding = lock_busy(&mut holder);

    // The holder lets go once the first attempt of migration 3 has failed: the two before it
    // were rolled back with it, and every migration runs once more, from the start.
    let (running, notices) = up_waiting_for_a_lock(
        &db,
        "SET migrate.lock_timeout = '200ms'; SET migrate.lock_retries = 2",
    );
    holding.commit().unwrap();
    assert_eq!(running.join().unwrap().unwrap(), 4);
    let notices = notices.lock().unwrap().clone();
    let retried = notices
        .iter()
        .position(|notice| notice.contains("could not get a lock"))
        .unwrap();
    assert_eq!(
        notices[retried..=retried + 1],
        [
            "migration \"3\" (alter busy) could not get a lock within 200 ms (attempt 1 of 3); trying again in 100 ms",
            "2 migrations run before it in this call rolled back with it and will run again first",
        ]
    );
    assert_eq!(
        notices
            .iter()
            .filter(|notice| notice.starts_with("migration \"1\" (log one) applied"))
            .count(),
        2,
        "reported when it ran, and again when it ran again"
    );
    // Each body's work and record are there once.
    assert_eq!(count(&mut client, "SELECT count(*) FROM log"), 3);
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM log WHERE n = 1"),
        1
    );
    assert_eq!(events(&mut client, "up"), ["1", "2", "3", "4"]);
    assert_eq!(count(&mut client, NOTE_COLUMN), 1);

    // Out of attempts, the migration is named with all of them, the first one included.
    let holding = lock_busy(&mut holder);
    register(
        &mut client,
        "5",
        "log five",
        "INSERT INTO log VALUES (5)",
        None,
    );
    register(
        &mut client,
        "6",
        "alter busy again",
        "ALTER TABLE busy ADD COLUMN other text",
        None,
    );
    let (mut runner, notices) = db.connect_with_notices();
    runner
        .batch_execute("SET migrate.lock_timeout = '100ms'; SET migrate.lock_retries = 1")
        .unwrap();
    let error = expect_sqlstate(up(&mut runner), "55P03");
    assert_eq!(
        error.message(),
        "migration \"6\" (alter busy again) could not get a lock within 100 ms in 2 attempts"
    );
    let waits: Vec<String> = notices
        .lock()
        .unwrap()
        .iter()
        .filter(|notice| notice.contains("could not get a lock"))
        .cloned()
        .collect();
    assert_eq!(
        waits,
        [
            "migration \"6\" (alter busy again) could not get a lock within 100 ms (attempt 1 of 2); trying again in 100 ms"
        ]
    );
    holding.rollback().unwrap();
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM log WHERE n = 5"),
        0
    );

    // Under migrate.snapshots = each, the snapshots the first run stored went with it: one
    // each is stored by the run that applied them, and it describes the catalog.
    let holding = lock_busy(&mut holder);
    let (running, _) = up_waiting_for_a_lock(
        &db,
        "SET migrate.lock_timeout = '200ms'; SET migrate.lock_retries = 2; \
         SET migrate.snapshots = 'each'",
    );
    holding.commit().unwrap();
    assert_eq!(running.join().unwrap().unwrap(), 2);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.snapshots WHERE version IN ('5', '6')"
        ),
        2
    );
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.drift()"),
        0
    );
    assert_eq!(events(&mut client, "up"), ["1", "2", "3", "4", "5", "6"]);
}

#[test]
fn waiting_for_the_runner_lock_is_bounded() {
    let db = TestDb::new("runner_wait");
    let mut first = db.connect();
    let first_pid = backend_pid(&mut first);
    let mut holding = first.transaction().unwrap();
    holding
        .query_one("SELECT migrate.register('1', 'one', 'SELECT 1')", &[])
        .unwrap();

    let mut second = db.connect();
    second
        .batch_execute("SET migrate.runner_wait = '200ms'")
        .unwrap();
    for call in [
        "SELECT migrate.up()",
        "SELECT migrate.register('2', 'two', 'SELECT 2')",
        "CALL migrate.apply()",
    ] {
        let error = expect_sqlstate(second.batch_execute(call), "55P03");
        assert_eq!(
            error.message(),
            format!("another migration runner (process {first_pid}) holds the runner lock"),
            "{call}"
        );
        assert_eq!(error.detail(), Some("Waited 200 ms (migrate.runner_wait)."));
    }
    holding.commit().unwrap();
    assert_eq!(up(&mut second).unwrap(), 1);
}

#[test]
fn an_enum_value_added_and_used_needs_apply() {
    let db = TestDb::new("enum_trap");
    let mut client = db.connect();
    register(
        &mut client,
        "1",
        "enum",
        "CREATE TYPE color AS ENUM ('red')",
        None,
    );
    up(&mut client).unwrap();
    register(
        &mut client,
        "2",
        "add blue",
        "ALTER TYPE color ADD VALUE 'blue'",
        None,
    );
    register(
        &mut client,
        "3",
        "use blue",
        "CREATE TABLE paint (c color DEFAULT 'blue')",
        None,
    );
    let error = expect_sqlstate(up(&mut client), "55P04");
    assert!(
        error.hint().unwrap().contains("CALL migrate.apply()"),
        "{:?}",
        error.hint()
    );
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert!(all_in_state(&mut client, "applied"));
    assert!(table_exists(&mut client, "paint"));
    assert_invariant(&mut client, 0);
}

/// `(version, sql)` rows of a plan.
fn plan_rows(client: &mut Client, query: &str) -> Vec<(i32, String, String, Option<String>)> {
    client
        .query(query, &[])
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(4)))
        .collect()
}

fn events(client: &mut Client, event: &str) -> Vec<String> {
    client
        .query(
            "SELECT version FROM migrate.history() WHERE event = $1 ORDER BY id",
            &[&event],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[test]
fn plan_shows_exactly_what_up_and_down_then_do() {
    let db = TestDb::new("plan");
    let mut client = db.connect();
    for i in [3, 1, 10, 2, 4] {
        register(
            &mut client,
            &i.to_string(),
            &format!("step {i}"),
            &format!("CREATE TABLE n{i} ()"),
            Some(&format!("DROP TABLE n{i}")),
        );
    }
    let plan = plan_rows(&mut client, "SELECT * FROM migrate.plan('4')");
    let expected: Vec<(i32, String, String, Option<String>)> = [1, 2, 3, 4]
        .iter()
        .zip(1..)
        .map(|(v, step)| {
            (
                step,
                "up".to_owned(),
                v.to_string(),
                Some(format!("CREATE TABLE n{v} ()")),
            )
        })
        .collect();
    assert_eq!(plan, expected);
    assert!(!table_exists(&mut client, "n1"), "planning runs nothing");
    assert_eq!(call(&mut client, "SELECT migrate.up('4')"), 4);
    let planned: Vec<String> = plan.iter().map(|row| row.2.clone()).collect();
    assert_eq!(
        events(&mut client, "up"),
        planned,
        "up() did what the plan said, in its order"
    );

    let plan_down = plan_rows(&mut client, "SELECT * FROM migrate.plan_down(3)");
    assert_eq!(
        plan_down
            .iter()
            .map(|row| (row.1.as_str(), row.2.as_str(), row.3.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("down", "4", Some("DROP TABLE n4")),
            ("down", "3", Some("DROP TABLE n3")),
            ("down", "2", Some("DROP TABLE n2"))
        ]
    );
    assert_eq!(call(&mut client, "SELECT migrate.down(3)"), 3);
    assert_eq!(events(&mut client, "down"), ["4", "3", "2"]);

    // A plan refuses what up() would refuse.
    register(&mut client, "0", "late", "CREATE TABLE n0 ()", None);
    expect_sqlstate(client.query("SELECT * FROM migrate.plan()", &[]), "55000");
    expect_sqlstate(
        client.query("SELECT * FROM migrate.plan('99')", &[]),
        "42704",
    );
    register(&mut client, "1", "step 1", "CREATE TABLE n1 ()", None);
    expect_sqlstate(
        client.query("SELECT * FROM migrate.plan_down(1)", &[]),
        "55000",
    );
}

#[test]
fn baseline_marks_migrations_applied_without_running_them() {
    let db = TestDb::new("baseline");
    let mut client = db.connect();
    for i in 1..=5 {
        register(
            &mut client,
            &i.to_string(),
            "step",
            &format!("CREATE TABLE b{i} ()"),
            None,
        );
    }
    expect_sqlstate(
        client.query_one("SELECT migrate.baseline('9')", &[]),
        "42704",
    );
    assert_eq!(call(&mut client, "SELECT migrate.baseline('3')"), 3);
    assert_eq!(events(&mut client, "baseline"), ["1", "2", "3"]);
    assert!(!table_exists(&mut client, "b1"), "baseline runs no body");
    assert_eq!(call(&mut client, "SELECT migrate.baseline('3')"), 0);
    assert_eq!(up(&mut client).unwrap(), 2);
    assert!(table_exists(&mut client, "b4") && table_exists(&mut client, "b5"));
    assert!(all_in_state(&mut client, "applied"));
}

/// Tables, columns and types of the public schema, and everything the extension knows.
fn everything(client: &mut Client) -> Vec<String> {
    let queries = [
        "SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1",
        "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace ORDER BY 1",
        "SELECT s::text FROM migrate.status() s",
        "SELECT h::text FROM migrate.history() h WHERE event <> 'rehearse'",
    ];
    text_rows(client, &queries)
}

#[test]
fn rehearse_tells_which_downs_reverse_their_ups_and_leaves_no_trace() {
    let db = TestDb::new("rehearse");
    let mut client = db.connect();
    client
        .batch_execute("CREATE TABLE people (id int PRIMARY KEY)")
        .unwrap();
    register(
        &mut client,
        "1",
        "good",
        "CREATE TYPE mood AS ENUM ('ok'); CREATE TABLE t1 (id int PRIMARY KEY, m mood DEFAULT 'ok');
         CREATE INDEX t1_m ON t1 (m); CREATE VIEW v1 AS SELECT id FROM t1;
         CREATE FUNCTION f1() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER t1_f1 BEFORE INSERT ON t1 FOR EACH ROW EXECUTE FUNCTION f1();
         CREATE SEQUENCE s1; INSERT INTO people VALUES (1)",
        Some("DROP VIEW v1; DROP TABLE t1; DROP FUNCTION f1(); DROP TYPE mood; DROP SEQUENCE s1; DELETE FROM people"),
    );
    register(
        &mut client,
        "2",
        "leaves a column",
        "ALTER TABLE people ADD COLUMN nickname text",
        Some("SELECT 1"),
    );
    register(&mut client, "3", "no down", "CREATE TABLE t3 ()", None);

    let rows = |client: &mut Client| {
        client
            .query(
                "SELECT version, up_ok, down_ok, reversible, detail FROM migrate.rehearse()",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
            .collect::<Vec<(
                String,
                Option<bool>,
                Option<bool>,
                Option<bool>,
                Option<String>,
            )>>()
    };
    let no_down = rows(&mut client);
    assert_eq!(
        no_down[2],
        (
            "3".into(),
            Some(true),
            None,
            Some(false),
            Some("no down body".into())
        )
    );
    assert_eq!(
        no_down[0].4.as_deref(),
        Some("not checked: the down of \"3\" has no down body")
    );

    register(
        &mut client,
        "3",
        "down errors",
        "CREATE TABLE t3 ()",
        Some("DROP TABLE t3_typo"),
    );
    let failing = rows(&mut client);
    assert_eq!(
        (failing[2].1, failing[2].2, failing[2].3),
        (Some(true), Some(false), Some(false))
    );
    assert!(
        failing[2]
            .4
            .as_deref()
            .unwrap()
            .starts_with("SQLSTATE 42P01: table \"t3_typo\" does not exist"),
        "{failing:?}"
    );

    register(
        &mut client,
        "3",
        "down fixed",
        "CREATE TABLE t3 ()",
        Some("DROP TABLE t3"),
    );
    let judged = rows(&mut client);
    assert_eq!(
        judged[0],
        ("1".into(), Some(true), Some(true), Some(true), None),
        "every kind of object restored"
    );
    assert_eq!(
        judged[1],
        (
            "2".into(),
            Some(true),
            Some(true),
            Some(false),
            Some("left behind: column public.people.nickname text".into())
        )
    );
    assert_eq!(
        judged[2],
        ("3".into(), Some(true), Some(true), Some(true), None)
    );

    // A failing up stops the rehearsal there.
    register(&mut client, "4", "bad up", "SELECT 1 / 0", Some("SELECT 1"));
    let failing_up = rows(&mut client);
    assert_eq!((failing_up[3].1, failing_up[3].2), (Some(false), None));
    assert!(
        failing_up[3]
            .4
            .as_deref()
            .unwrap()
            .starts_with("SQLSTATE 22012: division by zero")
    );

    // No trace but one history event.
    let before = everything(&mut client);
    let rehearsals = events(&mut client, "rehearse").len();
    rows(&mut client);
    assert_eq!(everything(&mut client), before);
    assert_eq!(count(&mut client, "SELECT count(*) FROM people"), 0);
    assert_eq!(events(&mut client, "rehearse").len(), rehearsals + 1);
}
