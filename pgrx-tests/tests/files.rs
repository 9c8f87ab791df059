//! Migrations from files (a server directory, files a client sends, the bash+psql loader) and
//! adoption of databases other tools migrated.

use std::path::{Path, PathBuf};
use std::process::Command;

use migrations_tests::*;

/// A directory of migration files, removed when dropped.
struct Directory(PathBuf);

impl Directory {
    fn new(name: &str, files: &[(&str, &str)]) -> Directory {
        let root = std::env::temp_dir().join(format!("migrations-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, content) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        Directory(root)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One migration per layout, each creating a table and dropping it in its down.
const EVERY_LAYOUT: &[(&str, &str)] = &[
    (
        "20260101_dbmate.sql",
        "-- migrate:up\nCREATE TABLE l1 ();\n-- migrate:down\nDROP TABLE l1;\n",
    ),
    ("20260102_golang.up.sql", "CREATE TABLE l2 ();"),
    ("20260102_golang.down.sql", "DROP TABLE l2;"),
    ("20260103_sqlx_simple.sql", "CREATE TABLE l3 ();"),
    ("20260104_diesel/up.sql", "CREATE TABLE l4 ();"),
    ("20260104_diesel/down.sql", "DROP TABLE l4;"),
    ("V20260105__flyway_thing.sql", "CREATE TABLE l5 ();"),
    ("U20260105__flyway_thing.sql", "DROP TABLE l5;"),
    ("README.md", "not a migration"),
];

fn registered(client: &mut Client) -> Vec<(String, String, bool)> {
    client
        .query("SELECT version, name, down_sql IS NOT NULL FROM migrate.migrations ORDER BY version_key", &[])
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

fn every_layout_registered() -> Vec<(String, String, bool)> {
    [
        ("20260101", "dbmate", true),
        ("20260102", "golang", true),
        ("20260103", "sqlx_simple", false),
        ("20260104", "diesel", true),
        ("20260105", "flyway thing", true),
    ]
    .iter()
    .map(|(v, n, d)| (v.to_string(), n.to_string(), *d))
    .collect()
}

#[test]
fn import_dir_places_every_layout_and_is_idempotent() {
    let db = TestDb::new("import_dir");
    let mut client = db.connect();
    let dir = Directory::new("import", EVERY_LAYOUT);
    let path = dir.path().to_str().unwrap();
    assert_eq!(
        client
            .query_one("SELECT migrate.import_dir($1)", &[&path])
            .unwrap()
            .get::<_, i32>(0),
        5
    );
    assert_eq!(registered(&mut client), every_layout_registered());
    assert_eq!(
        client
            .query_one("SELECT migrate.import_dir($1)", &[&path])
            .unwrap()
            .get::<_, i32>(0),
        0
    );
    assert_eq!(up(&mut client).unwrap(), 5);
    // The diesel and Flyway down files became down bodies.
    assert_eq!(call(&mut client, "SELECT migrate.down_to('20260103')"), 2);
    assert!(!table_exists(&mut client, "l4") && !table_exists(&mut client, "l5"));
    assert!(table_exists(&mut client, "l3"));

    expect_sqlstate(
        client.query_one("SELECT migrate.import_dir('relative/dir')", &[]),
        "22023",
    );
    let error = expect_sqlstate(
        client.query_one("SELECT migrate.import_dir('/nonexistent/dir')", &[]),
        "58P01",
    );
    assert_eq!(
        error.message(),
        "could not read \"/nonexistent/dir\": No such file or directory"
    );
    let bad = Directory::new(
        "unplaceable",
        &[("1_ok.sql", "SELECT 1"), ("B1__baseline.sql", "SELECT 2")],
    );
    let error = expect_sqlstate(
        client.query_one(
            "SELECT migrate.import_dir($1)",
            &[&bad.path().to_str().unwrap()],
        ),
        "22023",
    );
    assert!(
        error.message().contains("\"B1__baseline.sql\""),
        "{}",
        error.message()
    );
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.migrations WHERE version = '1'"
        ),
        0
    );

    // Reading server files is for roles with the rights of pg_read_server_files.
    client
        .batch_execute(
            "DROP ROLE IF EXISTS files_deployer; CREATE ROLE files_deployer LOGIN;
             GRANT USAGE ON SCHEMA migrate TO files_deployer;
             GRANT EXECUTE ON FUNCTION migrate.import_dir(text, text) TO files_deployer;",
        )
        .unwrap();
    let mut deployer = db.connect_as("files_deployer");
    expect_sqlstate(
        deployer.query_one("SELECT migrate.import_dir($1)", &[&path]),
        "42501",
    );
    client
        .batch_execute("GRANT pg_read_server_files TO files_deployer")
        .unwrap();
    assert_eq!(
        deployer
            .query_one("SELECT migrate.import_dir($1)", &[&path])
            .unwrap()
            .get::<_, i32>(0),
        0
    );
}

#[test]
fn register_files_takes_what_a_client_sends() {
    let db = TestDb::new("register_files");
    let mut client = db.connect();
    let paths: Vec<String> = EVERY_LAYOUT.iter().map(|(p, _)| p.to_string()).collect();
    let contents: Vec<String> = EVERY_LAYOUT.iter().map(|(_, c)| c.to_string()).collect();
    let registered_now: i32 = client
        .query_one(
            "SELECT migrate.register_files($1, $2, 'files')",
            &[&paths, &contents],
        )
        .unwrap()
        .get(0);
    assert_eq!(registered_now, 5);
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.status('files')"),
        5
    );
    expect_sqlstate(
        client.query_one(
            "SELECT migrate.register_files(ARRAY['1_a.sql'], ARRAY[]::text[])",
            &[],
        ),
        "22023",
    );
    expect_sqlstate(
        client.query_one(
            "SELECT migrate.register_files(ARRAY['1_a.down.sql'], ARRAY['SELECT 1'])",
            &[],
        ),
        "22023",
    );
    expect_sqlstate(
        client.query_one(
            "SELECT migrate.register_files(ARRAY[NULL], ARRAY['SELECT 1'])",
            &[],
        ),
        "22004",
    );
}

fn load(db: &TestDb, dir: &Path, options: &[&str]) -> std::process::Output {
    let output = run_loader(db, dir, options);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn run_loader(db: &TestDb, dir: &Path, options: &[&str]) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/load-migrations.sh");
    Command::new("bash")
        .arg(script)
        .args(options)
        .arg(dir)
        .args([
            "-h",
            &host(),
            "-p",
            &port().to_string(),
            "-U",
            "postgres",
            "-d",
            &db.name,
        ])
        .env(
            "PATH",
            format!("{}:{}", pg_bin(), std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap()
}

#[test]
fn the_bash_and_psql_loader_registers_a_local_directory() {
    let db = TestDb::new("loader");
    let mut client = db.connect();
    // Names and contents no quoting may break: quotes, backslashes, colons, dollars (also the
    // loader's own quoting tag), backticks, newlines.
    let tricky = "-- migrate:up\nCREATE TABLE \"it's\" (note text DEFAULT E'a\\\\b:c $1 `x` $migrate$');\n-- migrate:down\nDROP TABLE \"it's\";\n";
    let mut files = EVERY_LAYOUT.to_vec();
    files.push(("20260106_it's a \"name\".sql", tricky));
    // awk reads files as records: a file that ends in either byte it splits on arrives whole.
    files.push((
        "20260107_ends in 1.sql",
        "-- migrate:up\nSELECT 1; -- \u{1}",
    ));
    files.push((
        "20260108_ends in 2.sql",
        "-- migrate:up\nSELECT 2; -- \u{2}\u{1}\u{2}",
    ));
    let dir = Directory::new("loader", &files);
    load(&db, dir.path(), &["--apply"]);
    let mut expected = every_layout_registered();
    expected.push(("20260106".into(), "it's a \"name\"".into(), true));
    expected.push(("20260107".into(), "ends in 1".into(), false));
    expected.push(("20260108".into(), "ends in 2".into(), false));
    assert_eq!(registered(&mut client), expected);
    let ends: Vec<String> = client
        .query(
            "SELECT right(up_sql, 4) FROM migrate.migrations WHERE version IN ('20260107', '20260108') ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ends, ["-- \u{1}", " \u{2}\u{1}\u{2}"]);
    assert!(all_in_state(&mut client, "applied"));
    let default: String = client
        .query_one(
            "SELECT column_default FROM information_schema.columns WHERE table_name = 'it''s'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(default, "'a\\b:c $1 `x` $migrate$'::text");
    let again = load(&db, dir.path(), &["--up"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(" 0\n"),
        "nothing new the second time"
    );
    load(&db, dir.path(), &["--project", "other"]);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.status('other') WHERE state = 'pending'"
        ),
        8
    );
    // --print sends nothing: it prints the statements, which any client can send.
    let printed = load(&db, dir.path(), &["--print", "--project", "printed"]);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.status('printed')"
        ),
        0
    );
    client
        .batch_execute(&String::from_utf8(printed.stdout).unwrap())
        .unwrap();
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.status('printed') WHERE state = 'pending'"
        ),
        8
    );
}

/// The loader sends the files beside the SQL that carry a tool's no-transaction directive, and
/// `apply()` then builds the indexes concurrently.
#[test]
fn the_loader_sends_the_no_transaction_directives() {
    let db = TestDb::new("loader_directives");
    let mut client = db.connect();
    client.batch_execute("CREATE TABLE t (x int)").unwrap();
    let dir = Directory::new(
        "loader_directives",
        &[
            ("V1__flyway.sql", "CREATE INDEX CONCURRENTLY t_1 ON t (x);"),
            ("V1__flyway.sql.conf", "executeInTransaction=false\n"),
            (
                "2_sqlx.up.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY t_2 ON t (x);",
            ),
            ("3_diesel/up.sql", "CREATE INDEX CONCURRENTLY t_3 ON t (x);"),
            ("3_diesel/metadata.toml", "run_in_transaction = false\n"),
        ],
    );
    load(&db, dir.path(), &["--apply"]);
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT m.version || ' ' || m.transactional FROM migrate.migrations m ORDER BY 1"]
        ),
        ["1 false", "2 false", "3 false"]
    );
    assert!(all_in_state(&mut client, "applied"));
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM pg_index WHERE indrelid = 't'::regclass AND indisvalid"
        ),
        3
    );
}

#[test]
fn adopt_reads_each_tools_history() {
    let db = TestDb::new("adopt");
    let mut client = db.connect();
    for version in ["1", "2", "3", "4"] {
        register(
            &mut client,
            version,
            "step",
            &format!("CREATE TABLE a{version} ()"),
            None,
        );
    }
    let adopted = |client: &mut Client, tool: &str, setup: &str| -> Vec<String> {
        client.batch_execute(setup).unwrap();
        client
            .query_one("SELECT migrate.adopt($1)", &[&tool])
            .unwrap();
        let applied: Vec<String> = client
            .query(
                "SELECT version FROM migrate.status() WHERE state = 'applied' ORDER BY version",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        // Start over for the next tool.
        client.batch_execute("DELETE FROM migrate.applied").unwrap();
        applied
    };
    let reset = "DROP TABLE IF EXISTS schema_migrations, _sqlx_migrations, flyway_schema_history, goose_db_version;";
    for tool in ["dbmate", "rails"] {
        let setup = format!(
            "{reset} CREATE TABLE schema_migrations (version varchar PRIMARY KEY); INSERT INTO schema_migrations VALUES ('1'), ('003'), ('9')"
        );
        assert_eq!(adopted(&mut client, tool, &setup), ["1", "3"], "{tool}");
    }
    let golang = format!(
        "{reset} CREATE TABLE schema_migrations (version bigint, dirty boolean); INSERT INTO schema_migrations VALUES (2, false)"
    );
    assert_eq!(adopted(&mut client, "golang-migrate", &golang), ["1", "2"]);
    let sqlx = format!(
        "{reset} CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, success boolean); INSERT INTO _sqlx_migrations VALUES (1, true), (2, false), (4, true)"
    );
    assert_eq!(adopted(&mut client, "sqlx", &sqlx), ["1", "4"]);
    let flyway = format!(
        "{reset} CREATE TABLE flyway_schema_history (installed_rank int, version varchar, type varchar, success boolean);
         INSERT INTO flyway_schema_history VALUES (1, '1', 'SQL', true), (2, '2', 'SQL', true), (3, NULL, 'SQL', true),
                                                  (4, '2', 'UNDO_SQL', true), (5, '3', 'SQL', false)"
    );
    assert_eq!(adopted(&mut client, "flyway", &flyway), ["1"]);
    let goose = format!(
        "{reset} CREATE TABLE goose_db_version (id serial, version_id bigint, is_applied boolean);
         INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (3, true), (2, false)"
    );
    assert_eq!(adopted(&mut client, "goose", &goose), ["1", "3"]);
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'adopt'"
        ),
        11
    );

    client.batch_execute(&golang).unwrap();
    client
        .batch_execute("UPDATE schema_migrations SET dirty = true")
        .unwrap();
    expect_sqlstate(
        client.query_one("SELECT migrate.adopt('golang-migrate')", &[]),
        "55000",
    );
    client.batch_execute(reset).unwrap();
    expect_sqlstate(
        client.query_one("SELECT migrate.adopt('dbmate')", &[]),
        "42P01",
    );
    expect_sqlstate(
        client.query_one("SELECT migrate.adopt('liquibase')", &[]),
        "22023",
    );
    assert!(
        all_in_state(&mut client, "pending"),
        "no failed adoption marked anything"
    );
}

#[test]
fn adopt_names_the_versions_it_could_not_match() {
    let db = TestDb::new("adopt_unmatched");
    let (mut client, notices) = db.connect_with_notices();
    for version in ["1", "2"] {
        register(
            &mut client,
            version,
            "step",
            &format!("CREATE TABLE u{version} ()"),
            None,
        );
    }
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version bigint, dirty boolean); INSERT INTO schema_migrations VALUES (9, false)",
        )
        .unwrap();
    assert_eq!(
        call(&mut client, "SELECT migrate.adopt('golang-migrate')"),
        2
    );
    let notices = notices.lock().unwrap().clone();
    assert_eq!(
        notices[0],
        "1 version that golang-migrate applied has no registered migration: 9"
    );
    assert_eq!(notices[1], "2 migrations marked applied without being run");
}

/// Whether the loader's last run shipped the files: only then does psql print what
/// `register_files()` returned.
fn shipped(output: &std::process::Output) -> bool {
    String::from_utf8_lossy(&output.stdout).contains("registered_or_updated")
}

fn notice(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .find(|line| line.contains("NOTICE"))
        .unwrap_or_default()
        .to_owned()
}

/// The loader sends the files' sha256sum listing first, and ships them only when
/// `files_unchanged()` finds them changed, or the registry changed since they were registered.
#[test]
fn the_loader_ships_the_files_only_when_they_changed() {
    let db = TestDb::new("loader_unchanged");
    let mut client = db.connect();
    let mut files = EVERY_LAYOUT.to_vec();
    files.push((
        "R__view.sql",
        "CREATE OR REPLACE VIEW lv AS SELECT 1 AS one;",
    ));
    files.push((
        "20260109_pending.sql",
        "-- migrate:up\nCREATE TABLE l9 ();\n-- migrate:down\nDROP TABLE l9;\n",
    ));
    let dir = Directory::new("loader_unchanged", &files);
    let first = load(&db, dir.path(), &[]);
    assert!(shipped(&first), "the first run ships the files");
    client
        .batch_execute("SELECT migrate.up('20260105')")
        .unwrap();
    let unchanged = load(&db, dir.path(), &["--up"]);
    assert!(!shipped(&unchanged), "unchanged files are not shipped");
    assert_eq!(
        notice(&unchanged),
        notice(&first).replace("7 registered, 0 updated, 0", "0 registered, 0 updated, 7"),
        "the same notice as register_files() would give"
    );
    assert!(notice(&first).contains("6 migrations and 1 repeatable in"));
    assert!(
        all_in_state(&mut client, "applied"),
        "--up applies after the check"
    );
    client.batch_execute("SELECT migrate.down()").unwrap();

    // A changed pending migration is shipped, and replaces the registered one.
    std::fs::write(
        dir.path().join("20260109_pending.sql"),
        "-- migrate:up\nCREATE TABLE l9 (changed int);\n-- migrate:down\nDROP TABLE l9;\n",
    )
    .unwrap();
    assert!(shipped(&load(&db, dir.path(), &[])));
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.migrations WHERE up_sql LIKE '%changed int%'"
        ),
        1
    );
    assert!(!shipped(&load(&db, dir.path(), &[])));

    // A registration by any other call makes the files be shipped again.
    client
        .batch_execute("SELECT migrate.register('20260110', 'by hand', 'SELECT 1')")
        .unwrap();
    assert!(shipped(&load(&db, dir.path(), &[])));
    assert!(!shipped(&load(&db, dir.path(), &[])));
    client
        .batch_execute("SELECT migrate.register_repeatable('other', 'SELECT 1')")
        .unwrap();
    assert!(shipped(&load(&db, dir.path(), &[])));

    // A name that could end the dollar quote the listing travels in ships the files unasked,
    // every time, and registers them.
    let quote_ender = dir.path().join("20260112_$listing$.sql");
    std::fs::write(&quote_ender, "-- migrate:up\nSELECT 12;\n").unwrap();
    for _ in 0..2 {
        assert!(shipped(&load(&db, dir.path(), &[])));
    }
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.migrations WHERE name = '$listing$'"
        ),
        1
    );
    std::fs::remove_file(&quote_ender).unwrap();

    // A file that cannot be read stops the loader, after the listing, before anything else.
    let applied = "SELECT count(*) FROM migrate.status() WHERE state = 'applied'";
    let applied_before = count(&mut client, applied);
    std::os::unix::fs::symlink("/proc/self/mem", dir.path().join("20260111_unreadable.sql"))
        .unwrap();
    let failed = run_loader(&db, dir.path(), &["--up"]);
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("did not register the files"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(
        count(&mut client, applied),
        applied_before,
        "nothing applied after the failure"
    );
    std::fs::remove_file(dir.path().join("20260111_unreadable.sql")).unwrap();

    // The listing in any order; one changed byte, another project or another set is false.
    let listing = |order: &mut dyn FnMut(&mut Vec<String>)| {
        let output = Command::new("bash")
            .arg("-c")
            .arg("shopt -s nullglob; sha256sum -- *.sql *.sql.conf */*")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let mut lines: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| format!("{line}\n"))
            .collect();
        order(&mut lines);
        lines.concat()
    };
    let unchanged = |client: &mut Client, listing: &str, project: &str| -> bool {
        client
            .query_one(
                "SELECT migrate.files_unchanged($1, $2)",
                &[&listing, &project],
            )
            .unwrap()
            .get(0)
    };
    load(&db, dir.path(), &[]);
    assert!(unchanged(&mut client, &listing(&mut |_| ()), "default"));
    assert!(unchanged(
        &mut client,
        &listing(&mut |l| l.reverse()),
        "default"
    ));
    assert!(!unchanged(
        &mut client,
        &listing(&mut |l| l[0] = l[0].replacen('0', "1", 1)),
        "default"
    ));
    assert!(!unchanged(
        &mut client,
        &listing(&mut |l| {
            l.pop();
        }),
        "default"
    ));
    assert!(!unchanged(&mut client, &listing(&mut |_| ()), "other"));
    expect_sqlstate(
        client.query_one("SELECT migrate.files_unchanged(NULL)", &[]),
        "22004",
    );
}
