//! Real drivers: the example applications in Python (psycopg), Node.js (pg) and Rust
//! (tokio-postgres), eight instances starting at once against one database.

use std::process::{Child, Command, Stdio};

use migrations_tests::*;

fn repository(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn start(db: &TestDb, program: &str, args: &[String]) -> Child {
    Command::new(program)
        .args(args)
        .env("PGHOST", host())
        .env("PGPORT", port().to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", &db.name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

#[test]
fn eight_application_instances_in_three_languages_start_at_once() {
    let db = TestDb::new("drivers");
    let python = (
        "python3".to_owned(),
        vec![repository("examples/apps/python/app.py")],
    );
    let node = (
        "node".to_owned(),
        vec![repository("examples/apps/node/app.js")],
    );
    // scripts/test.sh builds it before the tests run.
    let rust = (repository("target/debug/migrations-example-app"), vec![]);
    let instances = [&python, &node, &rust, &python, &node, &rust, &python, &node];

    // A barrier: holding the runner lock, the test lets the instances start and waits until all
    // eight wait for it; then they race for it.
    let mut barrier = db.connect();
    let barrier_pid = backend_pid(&mut barrier);
    barrier
        .batch_execute("SELECT pg_advisory_lock(7883946363647714560)")
        .unwrap();
    let children: Vec<Child> = instances
        .iter()
        .map(|(program, args)| start(&db, program, args))
        .collect();
    let mut observer = db.connect();
    wait_for("all eight instances to wait for the runner lock", || {
        count(
            &mut observer,
            &format!(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = 1635017984 AND pid <> {barrier_pid}"
            ),
        ) == 8
    });
    barrier
        .batch_execute("SELECT pg_advisory_unlock(7883946363647714560)")
        .unwrap();

    let mut applied = 0;
    for ((program, _), child) in instances.iter().zip(children) {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{program}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout
            .lines()
            .find(|line| line.starts_with("started: "))
            .unwrap_or_else(|| panic!("{program}: {stdout}"));
        applied += line
            .split_whitespace()
            .nth(4)
            .unwrap()
            .parse::<i32>()
            .unwrap();
    }
    assert_eq!(applied, 6, "the six migrations were applied once in all");
    let mut client = db.connect();
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'register'"
        ),
        6
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'up'"
        ),
        6
    );
    assert!(all_in_state(&mut client, "applied"));
    // The bodies' own effects, once: the backfill made exactly one gold customer of two.
    assert_eq!(count(&mut client, "SELECT count(*) FROM customers"), 2);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM customers WHERE tier = 'gold'"
        ),
        1
    );
}
