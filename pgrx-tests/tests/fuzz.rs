//! Hostile input (T14, T15 and a fuzz pass): generated arguments for every SQL call of the
//! extension. Each case gets a correct result or a clean error: a server ERROR with a SQLSTATE
//! that is not XX000 and no Rust panic text; a NULL where a value is required gets 22004. The
//! server never crashes, the connection survives, and the state ends consistent.

use postgres::types::ToSql;

use migrations_tests::*;

const CASES: usize = 2000;

/// What an argument is for: each kind has its own pool of good, bad and odd values.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Version,
    Name,
    Body,
    Script,
    Project,
    Steps,
    Tool,
    Path,
    Paths,
    Contents,
}

use Kind::*;

/// Every call of the extension, its arguments, and which of them may not be NULL.
const CALLS: &[(&str, &[(Kind, bool)])] = &[
    (
        "register",
        &[
            (Version, true),
            (Name, true),
            (Body, true),
            (Body, false),
            (Project, true),
        ],
    ),
    (
        "register_script",
        &[
            (Version, true),
            (Name, true),
            (Script, true),
            (Project, true),
        ],
    ),
    ("up", &[(Version, false), (Project, true)]),
    ("down", &[(Steps, true), (Project, true)]),
    ("down_to", &[(Version, true), (Project, true)]),
    ("apply", &[(Version, false), (Project, true)]),
    ("baseline", &[(Version, true), (Project, true)]),
    ("plan", &[(Version, false), (Project, true)]),
    ("plan_down", &[(Steps, true), (Project, true)]),
    ("rehearse", &[(Version, false), (Project, true)]),
    (
        "register_files",
        &[(Paths, true), (Contents, true), (Project, true)],
    ),
    ("import_dir", &[(Path, true), (Project, true)]),
    ("adopt", &[(Tool, true), (Project, true)]),
    ("status", &[(Project, false)]),
    ("history", &[(Project, false)]),
];

/// Characters that break naive quoting, encodings and terminals.
const ODD: &[&str] = &[
    "'",
    "\"",
    "\\",
    "$$",
    "$x$",
    "%s",
    "%",
    "\n",
    "\r\n",
    "\t",
    ";",
    "--",
    "/*",
    "\u{202e}",
    "e\u{301}",
    "\u{1f600}",
    "\u{feff}",
    "Ω",
    "\u{7f}",
    "' OR '1'='1",
    "\\x00",
    "${var}",
];

fn odd_text(rng: &mut Rng) -> String {
    (0..rng.within(1..=6))
        .map(|_| *rng.pick(ODD))
        .collect::<Vec<_>>()
        .join(*rng.pick(&["", "a", " ", "1"]))
}

fn huge(rng: &mut Rng, unit: &str) -> String {
    unit.repeat(rng.within(1_000..=120_000) / unit.len().max(1))
}

fn version(rng: &mut Rng) -> String {
    match rng.within(0..=9) {
        // Registered ones (001-003 applied, 004-005 pending) and new good ones.
        0..=2 => format!("{:03}", rng.within(1..=5)),
        3 => format!("{}", rng.within(6..=999_999)),
        4 => rng
            .pick(&[
                "",
                " 1",
                "1 ",
                "-1",
                "0",
                "00",
                "1.0.0-beta",
                "1..2",
                "_1",
                ".1",
                "a",
                "Z9",
                "9223372036854775808",
                "99999999999999999999999999999999",
                "1;DROP TABLE x",
                "1/2",
                "v1",
                "1e10",
                "0x10",
                "1.0",
                "01",
                "0001",
            ])
            .to_string(),
        5 => odd_text(rng),
        6 => huge(rng, "9"),
        _ => format!("{}_{}", rng.within(0..=99), odd_text(rng)),
    }
}

const HOSTILE_BODIES: &[&str] = &[
    "COMMIT",
    "ROLLBACK",
    "BEGIN",
    "SAVEPOINT x",
    "CREATE INDEX CONCURRENTLY i ON t (id)",
    "VACUUM",
    "ALTER SYSTEM SET work_mem = '1GB'",
    "CREATE DATABASE x",
    "\\connect postgres",
    "SELECT migrate.up()",
    "SELECT migrate.register('9', 'n', 'SELECT 1')",
    "DROP SCHEMA migrate CASCADE",
    "DROP EXTENSION migrations",
    "TRUNCATE migrate.events CASCADE",
    "DELETE FROM migrate.applied",
    "SET LOCAL search_path = evil; CREATE TABLE fz_sp (id int)",
    "SET ROLE nobody",
    "RESET ROLE",
    "SELECT 1/0",
    "SELECT 'unterminated",
    "SELECT $$unterminated",
    "CREATE TABLE fz_a (id int); INSERT INTO fz_a VALUES (1); CREATE INDEX ON fz_a (id)",
    "DO $$ BEGIN RAISE EXCEPTION 'boom; $$'; END $$",
    "SELECT ';' AS a; SELECT $q$ ; $$ ; $q$",
    "-- only a comment",
    "/* only a comment */",
    "   \n\t  ",
    ";;;",
    "SELECT pg_catalog.set_config('role', 'postgres', true)",
    "COPY (SELECT 1) TO PROGRAM 'true'",
];

fn body(rng: &mut Rng) -> String {
    match rng.within(0..=9) {
        0..=2 => format!("CREATE TABLE fz_{} (id int)", rng.within(0..=1_000_000)),
        3..=5 => rng.pick(HOSTILE_BODIES).to_string(),
        6 => huge(rng, "SELECT 1;\n"),
        // Deep nesting: the parser's own limits, never the process stack.
        7 => {
            let depth = rng.within(1_000..=200_000);
            format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth))
        }
        8 => format!("SELECT '{}'", odd_text(rng).replace('\'', "''")),
        _ => odd_text(rng),
    }
}

/// An argument of `kind`: a NULL one time in seven (`None`), otherwise a value from its pool.
fn value(rng: &mut Rng, kind: Kind) -> Option<Box<dyn ToSql + Sync>> {
    if rng.within(0..=6) == 0 {
        return None;
    }
    Some(match kind {
        Version => Box::new(version(rng)),
        Name => Box::new(match rng.within(0..=3) {
            0 => "a name".to_owned(),
            1 => huge(rng, "n"),
            _ => odd_text(rng),
        }),
        Body => Box::new(body(rng)),
        Script => Box::new(match rng.within(0..=3) {
            0 => format!(
                "-- migrate:up\n{}\n-- migrate:down\n{}",
                body(rng),
                body(rng)
            ),
            1 => format!("-- migrate:down\n{}", body(rng)),
            2 => format!("-- migrate:up\n-- migrate:up\n{}", body(rng)),
            _ => body(rng),
        }),
        Project => Box::new(match rng.within(0..=5) {
            0..=2 => "default".to_owned(),
            3 => "other".to_owned(),
            4 => String::new(),
            _ => odd_text(rng),
        }),
        Steps => Box::new(*rng.pick(&[0, 1, 2, 5, -1, i32::MAX, i32::MIN])),
        Tool => Box::new(
            rng.pick(&[
                "dbmate",
                "flyway",
                "sqlx",
                "goose",
                "rails",
                "golang-migrate",
                "",
                "DBMATE",
                "liquibase",
                "dbmate; DROP TABLE x",
            ])
            .to_string(),
        ),
        Path => Box::new(
            rng.pick(&[
                "",
                "relative/dir",
                "/nonexistent",
                "/etc/hostname",
                "/dev/null",
                "/tmp/../nonexistent",
            ])
            .to_string(),
        ),
        Paths => Box::new(
            (0..rng.within(0..=3))
                .map(|_| {
                    (rng.within(0..=5) != 0).then(|| {
                        rng.pick(&[
                            "001_a.sql",
                            "20260101000000_x.sql",
                            "V2__y.sql",
                            "3_z.up.sql",
                            "3_z.down.sql",
                            "../../etc/passwd",
                            "",
                            "no_extension",
                        ])
                        .to_string()
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Contents => Box::new(
            (0..rng.within(0..=3))
                .map(|_| (rng.within(0..=5) != 0).then(|| body(rng)))
                .collect::<Vec<_>>(),
        ),
    })
}

/// A NULL of the type `kind` binds as.
fn null(kind: Kind) -> Box<dyn ToSql + Sync> {
    match kind {
        Steps => Box::new(None::<i32>),
        Paths | Contents => Box::new(None::<Vec<Option<String>>>),
        _ => Box::new(None::<String>),
    }
}

/// Whether an error is clean: a server ERROR with a precise SQLSTATE, and no Rust text in it.
fn clean(error: &DbError) -> bool {
    let text = format!(
        "{} {:?} {:?}",
        error.message(),
        error.detail(),
        error.hint()
    );
    error.severity() == "ERROR"
        && error.code().code() != "XX000"
        && error.message().len() < 1000
        && !["panicked", "unwrap()", "RUST_BACKTRACE", ".rs:"]
            .iter()
            .any(|rust| text.contains(rust))
}

fn seed_state(client: &mut Client) {
    create_applied_log(client);
    for i in 1..=5 {
        let version = format!("{i:03}");
        let up = logged_body(&version, &format!("CREATE TABLE base_{i} (id int)"));
        let down =
            format!("DROP TABLE base_{i}; DELETE FROM applied_log WHERE version = '{version}'");
        register(client, &version, "base", &up, Some(&down));
    }
    assert_eq!(call(client, "SELECT migrate.up('003')"), 3);
}

#[test]
fn generated_arguments_for_every_call_get_a_result_or_a_clean_error() {
    let db = TestDb::new("fuzz");
    let mut client = db.connect();
    client.batch_execute("SET lock_timeout = '2s'").unwrap();
    seed_state(&mut client);
    let pid = backend_pid(&mut client);
    let mut rng = Rng::from_env("fuzz");
    let (mut clean_errors, mut results, mut failures) = (0, 0, Vec::new());

    for case in 0..CASES {
        let (function, kinds) = *rng.pick(CALLS);
        let mut null_required = false;
        let args: Vec<Box<dyn ToSql + Sync>> = kinds
            .iter()
            .map(|&(kind, required)| {
                value(&mut rng, kind).unwrap_or_else(|| {
                    null_required |= required;
                    null(kind)
                })
            })
            .collect();
        let placeholders: Vec<String> = (1..=args.len()).map(|i| format!("${i}")).collect();
        let sql = match function {
            "apply" => format!("CALL migrate.apply({})", placeholders.join(", ")),
            "status" | "history" | "plan" | "plan_down" | "rehearse" => {
                format!(
                    "SELECT count(*)::int FROM migrate.{function}({})",
                    placeholders.join(", ")
                )
            }
            _ => format!(
                "SELECT migrate.{function}({})::text",
                placeholders.join(", ")
            ),
        };
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|arg| arg.as_ref()).collect();
        let described = || {
            let shown: Vec<String> = args
                .iter()
                .map(|arg| format!("{arg:?}").chars().take(80).collect())
                .collect();
            format!("case {case}: {function}({})", shown.join(", "))
        };

        // Every case in a transaction rolled back afterwards: each starts from the same state.
        let mut transaction = client.transaction().expect("begin");
        match transaction.query(&sql, &params) {
            Ok(rows) => {
                results += 1;
                if null_required {
                    failures.push(format!("{}: NULL accepted", described()));
                }
                if function == "register" {
                    // The stored migration is exactly what was sent, byte for byte.
                    let same: bool = transaction
                        .query_one(
                            "SELECT s.name = $2 AND s.checksum = encode(sha256(convert_to($3, 'UTF8')), 'hex')
                               FROM migrate.status($4) s WHERE s.version = $1",
                            &[params[0], params[1], params[2], params[4]],
                        )
                        .map(|row| row.get(0))
                        .unwrap_or(false);
                    if !same {
                        failures.push(format!("{}: {rows:?} but not stored as sent", described()));
                    }
                }
            }
            Err(error) => match error.as_db_error() {
                Some(db_error) if clean(db_error) => {
                    clean_errors += 1;
                    if null_required && db_error.code().code() != "22004" {
                        failures.push(format!(
                            "{}: NULL gave {}",
                            described(),
                            db_error.code().code()
                        ));
                    }
                }
                Some(db_error) => failures.push(format!(
                    "{}: unclean error {} {}",
                    described(),
                    db_error.code().code(),
                    db_error.message()
                )),
                None => {
                    failures.push(format!("{}: {error}", described()));
                    break;
                }
            },
        }
        transaction.rollback().expect("rollback");
    }

    figure("bad inputs tried", CASES as u64);
    figure("bad inputs with a clean error", clean_errors);
    figure("bad inputs with a correct result", results);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(clean_errors + results, CASES as u64);

    // The same backend answered every case, and the server log has no crash in it.
    let after = backend_pid(&mut client);
    assert_eq!(after, pid);
    let log = std::fs::read_to_string(format!("{}/server.log", db.server.host)).unwrap();
    assert!(!log.contains("terminated by signal"), "the server crashed");
    assert!(!log.contains("PANIC"), "the server panicked");
    assert_invariant(&mut client, 2);
}

#[test]
fn names_round_trip_byte_identical_and_huge_bodies_apply() {
    let db = TestDb::new("t14_t15_inputs");
    let mut client = db.connect();
    let names = [
        "it's",
        "\"quoted\"",
        "back\\slash",
        "$$ dollar $$",
        "100%",
        "two\nlines",
        "\u{202e}rtl",
        "e\u{301}",
        "\u{1f600} emoji",
    ];
    let long_name = "n".repeat(255);
    for (i, name) in names
        .iter()
        .copied()
        .chain([long_name.as_str()])
        .enumerate()
    {
        register(&mut client, &format!("{}", i + 1), name, "SELECT 1", None);
    }
    let stored = text_rows(
        &mut client,
        &["SELECT name FROM migrate.status() ORDER BY version::int"],
    );
    let sent: Vec<String> = names
        .iter()
        .map(|n| n.to_string())
        .chain([long_name.clone()])
        .collect();
    assert_eq!(stored, sent);
    // A longer name is refused, and the message does not repeat all of it.
    let error = expect_sqlstate(
        client.query_one(
            "SELECT migrate.register('99', $1, 'SELECT 1')",
            &[&"n".repeat(10_000)],
        ),
        "22023",
    );
    assert_eq!(
        error.message(),
        format!("invalid migration name \"{}...\"", "n".repeat(64))
    );

    // A 10 MB body of 100,000 statements registers and applies; it is stored once.
    let big: String = (0..100_000)
        .map(|i| format!("INSERT INTO big VALUES ({i}, 'row {i} of a large body, padded to a hundred bytes .........................');\n"))
        .collect();
    assert!(big.len() > 10_000_000);
    register(
        &mut client,
        "20",
        "big",
        &format!("CREATE TABLE big (id int, note text);\n{big}"),
        None,
    );
    assert_eq!(up(&mut client).unwrap(), 11);
    assert_eq!(count(&mut client, "SELECT count(*) FROM big"), 100_000);
    assert_invariant(&mut client, 0);
}

#[test]
fn t14_each_version_gets_its_documented_answer() {
    let db = TestDb::new("t14_versions");
    let mut client = db.connect();
    let long = "9".repeat(256);
    // (version, SQLSTATE or the result of register()), in this order: later ones see earlier ones.
    let cases: [(&str, &str); 16] = [
        ("", "22023"),
        (" 1", "22023"),
        ("1 ", "22023"),
        ("-1", "22023"),
        ("_1", "22023"),
        ("a/b", "22023"),
        ("1;DROP TABLE x", "22023"),
        (&long, "22023"),
        ("1", "registered"),
        ("01", "42710"),
        ("0001", "42710"),
        ("0", "registered"),
        ("1.0.0-beta", "registered"),
        ("9223372036854775808", "registered"),
        ("99999999999999999999999999999999", "registered"),
        ("abc", "registered"),
    ];
    for (version, expected) in cases {
        let result = client
            .query_one("SELECT migrate.register($1, 'v', 'SELECT 1')", &[&version])
            .map(|row| row.get::<_, String>(0));
        match result {
            Ok(outcome) => assert_eq!(outcome, expected, "{version:?}"),
            Err(error) => {
                let code = server_error::<()>(Err(error)).code().code().to_owned();
                assert_eq!(code, expected, "{version:?}");
            }
        }
        figure("bad inputs tried", 1);
        figure(
            "bad inputs with a clean error",
            u64::from(expected.len() == 5),
        );
        figure(
            "bad inputs with a correct result",
            u64::from(expected.len() != 5),
        );
    }
    // Same body: unchanged; another body while pending: updated.
    assert_eq!(
        register(&mut client, "1", "v", "SELECT 1", None),
        "unchanged"
    );
    assert_eq!(register(&mut client, "1", "v", "SELECT 2", None), "updated");
    // Natural order: digit runs compare as numbers, however long.
    assert_eq!(
        text_rows(&mut client, &["SELECT version FROM migrate.status()"]),
        [
            "0",
            "1",
            "1.0.0-beta",
            "9223372036854775808",
            "99999999999999999999999999999999",
            "abc"
        ]
    );
    assert_invariant(&mut client, 6);
}

#[test]
fn t15_bodies_above_max_body_size_are_refused_at_register() {
    let db = TestDb::new("t15_limit");
    let mut client = db.connect();
    client
        .batch_execute("SET migrate.max_body_size = '1MB'")
        .unwrap();
    let body = "SELECT 1;\n".repeat(110_000);
    for (up, down) in [(body.as_str(), None), ("SELECT 1", Some(body.as_str()))] {
        let error = expect_sqlstate(
            client.query_one("SELECT migrate.register('1', 'big', $1, $2)", &[&up, &down]),
            "54000",
        );
        let which = if down.is_some() { "down" } else { "up" };
        assert_eq!(
            error.message(),
            format!(
                "the {which} body of migration \"1\" has 1100000 bytes, more than migrate.max_body_size (1024 kB)"
            )
        );
        assert!(
            error
                .hint()
                .unwrap()
                .contains("raise migrate.max_body_size")
        );
        figure("bad inputs tried", 1);
        figure("bad inputs with a clean error", 1);
    }
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.migrations"),
        0
    );
    // 0 accepts any size.
    client
        .batch_execute("SET migrate.max_body_size = 0")
        .unwrap();
    assert_eq!(register(&mut client, "1", "big", &body, None), "registered");
    assert_invariant(&mut client, 1);
}
