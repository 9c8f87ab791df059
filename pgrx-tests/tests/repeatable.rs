//! Repeatable migrations (R01-R05): run again, after the versioned ones, whenever their body
//! differs from the one last run; once under sixteen callers; a failure recorded and raised;
//! as their registrant; placed from Flyway's `R__` files; kept by a dump.

use std::sync::{Arc, Barrier};
use std::thread;

use migrations_tests::*;

fn register_repeatable(client: &mut Client, name: &str, body: &str) -> String {
    client
        .query_one(
            "SELECT migrate.register_repeatable($1, $2)",
            &[&name, &body],
        )
        .unwrap_or_else(|e| panic!("register_repeatable {name}: {e:?}"))
        .get(0)
}

/// A view over `accounts` above `limit`, whose body also logs that it ran.
fn view_body(limit: i32) -> String {
    format!(
        "CREATE OR REPLACE VIEW rich AS SELECT id FROM accounts WHERE balance > {limit};
         INSERT INTO runs VALUES ('rich', {limit})"
    )
}

fn setup(client: &mut Client) {
    client
        .batch_execute("CREATE TABLE runs (name text, body int)")
        .unwrap();
    register(
        client,
        "1",
        "accounts",
        "CREATE TABLE accounts (id int, balance numeric)",
        None,
    );
}

fn runs(client: &mut Client) -> Vec<String> {
    text_rows(
        client,
        &["SELECT name || ' ' || body FROM runs ORDER BY ctid"],
    )
}

/// `(name, state)` of the repeatable migrations in `status()`.
fn repeatable_states(client: &mut Client) -> Vec<(String, String)> {
    client
        .query(
            "SELECT name, state FROM migrate.status() WHERE version IS NULL",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[test]
fn r01_a_repeatable_runs_after_the_versioned_ones_and_again_when_it_changes() {
    let db = TestDb::new("r01_cycle");
    let mut client = db.connect();
    setup(&mut client);
    assert_eq!(
        register_repeatable(&mut client, "rich", &view_body(100)),
        "registered"
    );
    assert_eq!(
        register_repeatable(&mut client, "rich", &view_body(100)),
        "unchanged"
    );
    // In version order first: the view needs the table.
    assert_eq!(call(&mut client, "SELECT migrate.up()"), 2);
    assert_eq!(
        call(&mut client, "SELECT migrate.up()"),
        0,
        "unchanged: not run again"
    );
    assert_eq!(
        repeatable_states(&mut client),
        [("rich".into(), "applied".into())]
    );
    assert_eq!(
        register_repeatable(&mut client, "rich", &view_body(1000)),
        "updated"
    );
    assert_eq!(
        repeatable_states(&mut client),
        [("rich".into(), "pending".into())]
    );
    // A target applies versioned migrations only.
    assert_eq!(call(&mut client, "SELECT migrate.up('1')"), 0);
    client.batch_execute("CALL migrate.apply()").unwrap();
    assert_eq!(runs(&mut client), ["rich 100", "rich 1000"]);
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT event FROM migrate.history() WHERE version = 'rich' ORDER BY id"]
        ),
        [
            "repeatable register",
            "repeatable reapply",
            "snapshot",
            "repeatable update",
            "repeatable reapply",
            "snapshot"
        ],
        "the catalog is stored after the last migration of each call"
    );
    assert!(text_rows(&mut client, &["SELECT problem FROM migrate.verify()"]).is_empty());
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT (pg_get_viewdef('rich') LIKE '%1000%')::text"]
        ),
        ["true"]
    );
}

#[test]
fn r02_sixteen_callers_run_a_changed_repeatable_once() {
    const CALLERS: usize = 16;
    let db = TestDb::new("r02_sixteen");
    let mut client = db.connect();
    setup(&mut client);
    register_repeatable(&mut client, "rich", &view_body(100));
    assert_eq!(call(&mut client, "SELECT migrate.up()"), 2);
    for round in 1..=3 {
        let barrier = Arc::new(Barrier::new(CALLERS));
        let body = view_body(100 + round);
        let callers: Vec<_> = (0..CALLERS)
            .map(|i| {
                let mut caller = db.connect();
                let (barrier, body) = (Arc::clone(&barrier), body.clone());
                thread::spawn(move || {
                    barrier.wait();
                    // What each instance does at start-up: register everything, then run.
                    register_repeatable(&mut caller, "rich", &body);
                    if i % 2 == 0 {
                        call(&mut caller, "SELECT migrate.up()")
                    } else {
                        caller.batch_execute("CALL migrate.apply()").unwrap();
                        0
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        figure("concurrent callers", CALLERS as u64);
    }
    assert_eq!(
        runs(&mut client),
        ["rich 100", "rich 101", "rich 102", "rich 103"]
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'repeatable reapply'"
        ),
        4
    );
    figure("duplicate applications found", 0);
}

#[test]
fn r03_a_failing_repeatable_is_recorded_and_raised_after_what_committed() {
    let db = TestDb::new("r03_failure");
    let mut client = db.connect();
    setup(&mut client);
    register_repeatable(&mut client, "broken", "SELECT * FROM no_such_table");
    let error = expect_sqlstate(client.batch_execute("CALL migrate.apply()"), "42P01");
    assert!(
        error
            .detail()
            .unwrap()
            .contains("of migration \"broken\" (repeatable)"),
        "{:?}",
        error.detail()
    );
    // The versioned migration committed before it.
    assert!(table_exists(&mut client, "accounts"));
    assert_eq!(
        repeatable_states(&mut client),
        [("broken".into(), "failed".into())]
    );
    assert_eq!(
        text_rows(&mut client, &["SELECT problem FROM migrate.verify()"]),
        ["repeatable failed"]
    );
    // In one transaction, all or nothing: up() rolls back with it.
    register(&mut client, "2", "more", "CREATE TABLE more ()", None);
    expect_sqlstate(up(&mut client), "42P01");
    assert!(!table_exists(&mut client, "more"));
    register_repeatable(&mut client, "broken", "SELECT * FROM accounts");
    assert_eq!(call(&mut client, "SELECT migrate.up()"), 2);
    assert_eq!(
        repeatable_states(&mut client),
        [("broken".into(), "applied".into())]
    );
}

#[test]
fn r04_a_repeatable_runs_as_its_registrant() {
    let db = TestDb::new("r04_registrant");
    let mut admin = db.connect();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS r04_mallory; CREATE ROLE r04_mallory LOGIN;
             GRANT USAGE ON SCHEMA migrate TO r04_mallory;
             GRANT EXECUTE ON FUNCTION migrate.register_repeatable(text, text, text) TO r04_mallory;",
        )
        .unwrap();
    let mut mallory = db.connect_as("r04_mallory");
    register_repeatable(&mut mallory, "grab", "ALTER ROLE r04_mallory SUPERUSER");
    expect_sqlstate(admin.query_one("SELECT migrate.up()", &[]), "42501");
    expect_sqlstate(admin.batch_execute("CALL migrate.apply()"), "42501");
    let superuser: bool = admin
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'r04_mallory'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!superuser);
    figure("privilege checks passed", 2);
}

#[test]
fn r05_flyway_repeatables_are_placed_and_kept_by_a_dump() {
    let db = TestDb::new("r05_files");
    let mut client = db.connect();
    client
        .batch_execute("CREATE TABLE runs (name text, body int)")
        .unwrap();
    let registered: i32 = client
        .query_one(
            "SELECT migrate.register_files(ARRAY['V1__accounts.sql', 'R__rich_accounts.sql'],
                 ARRAY['CREATE TABLE accounts (id int, balance numeric)', $1])",
            &[&view_body(100)],
        )
        .unwrap()
        .get(0);
    assert_eq!(registered, 2);
    assert_eq!(call(&mut client, "SELECT migrate.up()"), 2);
    assert_eq!(
        repeatable_states(&mut client),
        [("rich accounts".into(), "applied".into())]
    );
    let before = text_rows(
        &mut client,
        &[
            "SELECT s::text FROM migrate.status() s",
            "SELECT h::text FROM migrate.history() h",
        ],
    );
    let restored = TestDb::empty("r05_restored");
    let file = format!("{}/r05.dump", std::env::temp_dir().display());
    let connection = [
        "-h".to_owned(),
        host(),
        "-p".to_owned(),
        port().to_string(),
        "-U".to_owned(),
        "postgres".to_owned(),
    ];
    for (program, args) in [
        (
            "pg_dump",
            vec![
                "-Fc".to_owned(),
                "-f".to_owned(),
                file.clone(),
                "-d".to_owned(),
                db.name.clone(),
            ],
        ),
        (
            "pg_restore",
            vec!["-d".to_owned(), restored.name.clone(), file.clone()],
        ),
    ] {
        let status = std::process::Command::new(format!("{}/{program}", pg_bin()))
            .args(&connection)
            .args(&args)
            .status()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(status.success(), "{program}");
    }
    let mut target = restored.connect();
    let after = text_rows(
        &mut target,
        &[
            "SELECT s::text FROM migrate.status() s",
            "SELECT h::text FROM migrate.history() h",
        ],
    );
    assert_eq!(after, before);
    assert_eq!(call(&mut target, "SELECT migrate.up()"), 0);
}
