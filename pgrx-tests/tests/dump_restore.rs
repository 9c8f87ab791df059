//! pg_dump and restore keep every body, every history row, and status().

use std::process::Command;

use migrations_tests::*;

fn run(program: &str, args: &[&str]) {
    let output = Command::new(format!("{}/{program}", pg_bin()))
        .args(["-h", &host(), "-p", &port().to_string(), "-U", "postgres"])
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
fn snapshot(client: &mut Client) -> Vec<String> {
    let queries = [
        "SELECT s::text FROM migrate.status() s",
        "SELECT h::text FROM migrate.history() h",
        "SELECT m::text FROM migrate.migrations m ORDER BY project, version",
        "SELECT a::text FROM migrate.applied a ORDER BY project, version",
    ];
    text_rows(client, &queries)
}

#[test]
fn dump_and_restore_keep_bodies_history_and_status() {
    let source = TestDb::new("dump_source");
    let mut client = source.connect();
    for i in 1..=5 {
        register(
            &mut client,
            &format!("{i}"),
            &format!("step {i}"),
            &format!("CREATE TABLE d{i} (id int);\nINSERT INTO d{i} VALUES ({i});"),
            Some(&format!("DROP TABLE d{i}")),
        );
    }
    client
        .query_one(
            "SELECT migrate.register('1', 'other', 'SELECT 1', NULL, 'other')",
            &[],
        )
        .unwrap();
    assert_eq!(call(&mut client, "SELECT migrate.up('3')"), 3);
    assert_eq!(call(&mut client, "SELECT migrate.down()"), 1);
    assert_eq!(call(&mut client, "SELECT migrate.up('3')"), 1);
    let before = snapshot(&mut client);
    assert!(before.len() > 20);
    let last_event = count(&mut client, "SELECT max(id) FROM migrate.history()");

    let dir = std::env::temp_dir().join(format!("migrations-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let custom = dir.join("dump.custom");
    let plain = dir.join("dump.sql");
    run(
        "pg_dump",
        &["-Fc", "-f", custom.to_str().unwrap(), "dump_source"],
    );
    run(
        "pg_dump",
        &["-Fp", "-f", plain.to_str().unwrap(), "dump_source"],
    );

    let custom_restore = TestDb::empty("restored_custom");
    run(
        "pg_restore",
        &[
            "--exit-on-error",
            "-d",
            "restored_custom",
            custom.to_str().unwrap(),
        ],
    );
    let plain_restore = TestDb::empty("restored_plain");
    run(
        "psql",
        &[
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "restored_plain",
            "-f",
            plain.to_str().unwrap(),
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();

    for restored in [custom_restore, plain_restore] {
        let mut client = restored.connect();
        assert_eq!(
            snapshot(&mut client),
            before,
            "{} differs from the source",
            restored.name
        );
        // The restored database carries on: the rest applies once, event ids continue.
        assert_eq!(up(&mut client).unwrap(), 2);
        assert_eq!(count(&mut client, "SELECT count(*) FROM d5"), 1);
        assert_eq!(up(&mut client).unwrap(), 0);
        assert_eq!(
            count(
                &mut client,
                "SELECT min(id) FROM migrate.history() WHERE event = 'up' AND version = '4'"
            ),
            last_event + 1,
            "the history's sequence was restored"
        );
    }
}
