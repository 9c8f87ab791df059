//! What goes wrong, and that it leaves nothing behind.

use migrations_tests::*;

#[test]
fn a_failing_body_names_its_place_and_leaves_nothing_of_the_call() {
    let db = TestDb::new("failing_body");
    let mut client = db.connect();
    register(&mut client, "1", "first", "CREATE TABLE a (id int)", None);
    register(
        &mut client,
        "2",
        "second",
        "CREATE TABLE b (id int); INSERT INTO b VALUES (1)",
        None,
    );
    register(
        &mut client,
        "3",
        "breaks",
        "CREATE TABLE c (id int);\nINSERT INTO c VALUES (1);\n\n-- the failing one\nSELECT 1 / 0;\nCREATE TABLE d ()",
        None,
    );
    let error = expect_sqlstate(up(&mut client), "22012");
    assert_eq!(
        error.message(),
        "division by zero",
        "the server's own message is kept"
    );
    assert_eq!(
        error.detail(),
        Some("Statement 3 (line 5) of the up body of migration \"3\" (breaks).")
    );

    for table in ["a", "b", "c", "d"] {
        assert!(!table_exists(&mut client, table), "{table} was rolled back");
    }
    assert!(all_in_state(&mut client, "pending"));
    assert_eq!(
        count(
            &mut client,
            "SELECT count(*) FROM migrate.history() WHERE event = 'up'"
        ),
        0
    );

    // The server's own DETAIL stays, followed by the place; another project is named.
    register(&mut client, "3", "breaks", "SELECT 1", None);
    client
        .query_one(
            "SELECT migrate.register('1', 'dup', 'CREATE TABLE e (id int PRIMARY KEY); INSERT INTO e VALUES (1), (1)', NULL, 'billing')",
            &[],
        )
        .unwrap();
    let error = expect_sqlstate(
        client.query_one("SELECT migrate.up(NULL, 'billing')", &[]),
        "23505",
    );
    assert_eq!(
        error.detail(),
        Some(
            "Key (id)=(1) already exists.\nStatement 2 (line 1) of the up body of migration \"1\" (dup) in project \"billing\"."
        )
    );

    // Fixed, the same call succeeds: no dirty state to clear.
    assert_eq!(up(&mut client).unwrap(), 3);
}

#[test]
fn statements_that_cannot_run_in_a_function_are_refused_at_register() {
    let db = TestDb::new("refused");
    let mut client = db.connect();
    let refused = [
        (
            "CREATE INDEX CONCURRENTLY i ON t (id)",
            "CREATE INDEX CONCURRENTLY",
        ),
        (
            "create unique index concurrently if not exists i on t (id)",
            "CREATE INDEX CONCURRENTLY",
        ),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX TABLE CONCURRENTLY t", "REINDEX CONCURRENTLY"),
        ("REINDEX (CONCURRENTLY) INDEX i", "REINDEX CONCURRENTLY"),
        ("REINDEX SCHEMA public", "REINDEX SCHEMA"),
        ("VACUUM t", "VACUUM"),
        ("VACUUM (ANALYZE) t", "VACUUM"),
        ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM"),
        ("CREATE DATABASE other", "CREATE DATABASE"),
        ("DROP DATABASE other", "DROP DATABASE"),
        ("CREATE TABLESPACE ts LOCATION '/tmp'", "CREATE TABLESPACE"),
        ("DROP TABLESPACE ts", "DROP TABLESPACE"),
        (
            "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
            "ALTER TABLE DETACH PARTITION CONCURRENTLY",
        ),
        ("CLUSTER", "CLUSTER without a table"),
        ("DISCARD ALL", "DISCARD ALL"),
        ("BEGIN", "BEGIN"),
        ("START TRANSACTION", "START TRANSACTION"),
        ("COMMIT", "COMMIT"),
        ("END", "COMMIT"),
        ("ROLLBACK", "ROLLBACK"),
        ("SAVEPOINT s", "SAVEPOINT"),
        ("RELEASE SAVEPOINT s", "RELEASE SAVEPOINT"),
        ("ROLLBACK TO SAVEPOINT s", "ROLLBACK TO SAVEPOINT"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("COPY t FROM STDIN", "COPY FROM STDIN"),
        ("COPY t TO STDOUT", "COPY TO STDOUT"),
    ];
    for (statement, kind) in refused {
        // The refused statement comes second, on line 3, after a comment line.
        let body = format!("CREATE TABLE t (id int);\n-- then\n{statement};\nSELECT 1;");
        for (up_sql, down_sql, which) in [
            (body.as_str(), None, "up"),
            ("SELECT 1", Some(body.as_str()), "down"),
        ] {
            let error = expect_sqlstate(
                client.query_one(
                    "SELECT migrate.register('1', 'refused', $1, $2)",
                    &[&up_sql, &down_sql],
                ),
                "0A000",
            );
            // The other lane takes CONCURRENTLY and VACUUM: the message says which refuses.
            let inside = if kind.contains("CONCURRENTLY") || kind == "VACUUM" {
                "a transactional migration"
            } else {
                "a migration"
            };
            assert_eq!(
                error.message(),
                format!("{kind} cannot run inside {inside}"),
                "{statement}"
            );
            assert_eq!(
                error.detail(),
                Some(
                    format!(
                        "Statement 2 (line 3) of the {which} body of migration \"1\" (refused)."
                    )
                    .as_str()
                )
            );
            assert!(error.hint().is_some(), "{statement}");
        }
    }
    let error = expect_sqlstate(
        client.query_one(
            "SELECT migrate.register('1', 'meta', E'SELECT 1;\\n\\\\connect other\\nSELECT 2;')",
            &[],
        ),
        "42601",
    );
    assert_eq!(
        error.message(),
        "psql meta-command \"\\connect\" is not SQL"
    );
    assert_eq!(
        error.detail(),
        Some("Line 2 of the up body of migration \"1\" (meta).")
    );
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM migrate.status()"),
        0,
        "nothing was registered"
    );
}

#[test]
fn statements_that_only_look_refused_are_accepted_and_run() {
    let db = TestDb::new("lookalikes");
    let mut client = db.connect();
    let body = r#"
CREATE TABLE "concurrently" (id int PRIMARY KEY, note text);
INSERT INTO "concurrently" VALUES (1, 'CREATE INDEX CONCURRENTLY; COMMIT; VACUUM');
-- VACUUM in a comment; BEGIN; COMMIT;
/* CREATE INDEX CONCURRENTLY in a block comment */
CREATE MATERIALIZED VIEW mv AS SELECT id FROM "concurrently";
CREATE UNIQUE INDEX mv_id ON mv (id);
REFRESH MATERIALIZED VIEW CONCURRENTLY mv;
CREATE FUNCTION refresh_mv() RETURNS void LANGUAGE sql AS $fn$
    REFRESH MATERIALIZED VIEW CONCURRENTLY mv;
$fn$;
DO $do$ BEGIN PERFORM 'COMMIT'; RAISE NOTICE 'VACUUM %', 1; END $do$;
ANALYZE "concurrently";
CREATE INDEX concurrently_note ON "concurrently" (note);
CLUSTER "concurrently" USING concurrently_pkey;
INSERT INTO "concurrently" VALUES (2, $$dollar; quoted; ;$$)
"#;
    assert_eq!(
        register(&mut client, "1", "look-alikes", body, None),
        "registered"
    );
    assert_eq!(up(&mut client).unwrap(), 1);
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM \"concurrently\""),
        2,
        "the last statement had no semicolon"
    );
    assert_eq!(count(&mut client, "SELECT count(*) FROM mv"), 1);
    let note: String = client
        .query_one("SELECT note FROM \"concurrently\" WHERE id = 2", &[])
        .unwrap()
        .get(0);
    assert_eq!(note, "dollar; quoted; ;");
    assert_invariant(&mut client, 0);
}

#[test]
fn out_of_order_is_refused_until_allowed() {
    let db = TestDb::new("out_of_order");
    let mut client = db.connect();
    register(&mut client, "1", "one", "CREATE TABLE one ()", None);
    register(&mut client, "3", "three", "CREATE TABLE three ()", None);
    assert_eq!(up(&mut client).unwrap(), 2);
    register(&mut client, "2", "two", "CREATE TABLE two ()", None);
    register(
        &mut client,
        "2.5",
        "two and a half",
        "CREATE TABLE two_half ()",
        None,
    );
    register(&mut client, "4", "four", "CREATE TABLE four ()", None);

    let error = expect_sqlstate(up(&mut client), "55000");
    assert_eq!(
        error.message(),
        "pending migrations are older than applied migration \"3\""
    );
    assert_eq!(error.detail(), Some("Out of order: \"2\", \"2.5\"."));
    assert!(error.hint().unwrap().contains("migrate.allow_out_of_order"));
    assert!(!table_exists(&mut client, "four"), "nothing was applied");

    client
        .batch_execute("SET migrate.allow_out_of_order = on")
        .unwrap();
    assert_eq!(up(&mut client).unwrap(), 3);
    let order: Vec<String> = states(&mut client).into_iter().map(|(v, _)| v).collect();
    assert_eq!(
        order,
        ["1", "3", "2", "2.5", "4"],
        "status lists migrations in apply order"
    );
    // down() reverts the most recently applied first.
    client.batch_execute("SELECT migrate.down(0)").unwrap();
    register(
        &mut client,
        "4",
        "four",
        "CREATE TABLE four ()",
        Some("DROP TABLE four"),
    );
    assert_eq!(call(&mut client, "SELECT migrate.down(1)"), 1);
    assert!(!table_exists(&mut client, "four"));
}

#[test]
fn only_read_committed_callers_may_run() {
    let db = TestDb::new("isolation");
    let mut client = db.connect();
    register(
        &mut client,
        "1",
        "one",
        "CREATE TABLE one ()",
        Some("DROP TABLE one"),
    );
    for level in ["REPEATABLE READ", "SERIALIZABLE"] {
        for call in [
            "SELECT migrate.up()",
            "SELECT migrate.down()",
            "SELECT migrate.down_to('1')",
            "SELECT migrate.register('2', 'two', 'SELECT 1')",
        ] {
            let transaction = client.build_transaction().isolation_level(match level {
                "REPEATABLE READ" => postgres::IsolationLevel::RepeatableRead,
                _ => postgres::IsolationLevel::Serializable,
            });
            let mut transaction = transaction.start().unwrap();
            let error = expect_sqlstate(transaction.query_one(call, &[]), "25000");
            assert!(
                error
                    .message()
                    .ends_with("must run in a READ COMMITTED transaction"),
                "{call}"
            );
            assert!(error.detail().unwrap().contains(level));
        }
    }
    client
        .batch_execute("SET default_transaction_isolation = 'repeatable read'")
        .unwrap();
    expect_sqlstate(up(&mut client), "25000");
    client
        .batch_execute("RESET default_transaction_isolation")
        .unwrap();
    assert_eq!(up(&mut client).unwrap(), 1);
    assert_invariant(&mut client, 0);
}

#[test]
fn a_body_cannot_call_the_runner() {
    let db = TestDb::new("nesting");
    let mut client = db.connect();
    for (call, function) in [
        ("SELECT migrate.up()", "migrate.up()"),
        ("SELECT migrate.down()", "migrate.down()"),
        ("SELECT migrate.down_to('1')", "migrate.down_to()"),
        (
            "SELECT migrate.register('9', 'x', 'SELECT 1')",
            "migrate.register()",
        ),
        (
            "SELECT migrate.register_script('9', 'x', '-- migrate:up\nSELECT 1')",
            "migrate.register_script()",
        ),
        // Also through a function the body defines.
        (
            "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT migrate.up()'; SELECT sneaky()",
            "migrate.up()",
        ),
    ] {
        register(&mut client, "1", "nested", call, None);
        let error = expect_sqlstate(up(&mut client), "55000");
        assert_eq!(
            error.message(),
            format!("{function} cannot be called from a migration body")
        );
    }
    // The guard is released after the failure: the session works normally.
    register(&mut client, "1", "nested", "SELECT 1", None);
    assert_eq!(up(&mut client).unwrap(), 1);
}

#[test]
fn t13_failing_bodies_leave_nothing_and_need_no_manual_fix() {
    let db = TestDb::new("t13_failing");
    let mut client = db.connect();
    create_applied_log(&mut client);
    client
        .batch_execute(
            "CREATE TABLE parent (id int PRIMARY KEY);
             CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
             CREATE TABLE data (n int); INSERT INTO data VALUES (-1);",
        )
        .unwrap();
    // A syntax error is refused at register, with its line.
    let error = expect_sqlstate(
        client.query_one(
            "SELECT migrate.register('1', 'typo', 'CREATE TABLE ok ();\nCREATE TABEL oops ()')",
            &[],
        ),
        "42601",
    );
    assert!(
        error.detail().unwrap().starts_with("Line 2 of the up body"),
        "{error:?}"
    );
    register(
        &mut client,
        "1",
        "fine",
        &logged_body("1", "CREATE TABLE one ()"),
        Some("DROP TABLE one; DELETE FROM applied_log WHERE version = '1'"),
    );
    // A runtime error, a constraint that existing data violates, a deferred foreign key that
    // only fails when checked: each fails its migration, with its place, under up() and apply().
    let failing = [
        ("SELECT 1 / 0", "22012", "Statement 1 (line 1)"),
        (
            "ALTER TABLE data ADD CHECK (n >= 0)",
            "23514",
            "Statement 1 (line 1)",
        ),
        (
            "INSERT INTO child VALUES (42)",
            "23503",
            "The deferred constraint checks at the end",
        ),
    ];
    for (body, sqlstate, place) in failing {
        register(&mut client, "2", "fails", &logged_body("2", body), None);
        let error = expect_sqlstate(up(&mut client), sqlstate);
        // Under up() the caller registered the body, so its deferred check runs at the
        // caller's commit, as in plain SQL, where no migration is named.
        if sqlstate != "23503" {
            let detail = error.detail().unwrap();
            assert!(detail.contains(place), "{error:?}");
            assert!(
                detail.contains("the up body of migration \"2\" (fails)"),
                "{error:?}"
            );
        }
        assert_eq!(
            count(&mut client, "SELECT count(*) FROM migrate.applied"),
            0
        );
        // apply() commits migration 1, and records 2 as failed with its place.
        let error = expect_sqlstate(client.batch_execute("CALL migrate.apply()"), sqlstate);
        assert!(error.detail().unwrap().contains(place), "{error:?}");
        assert_eq!(
            states(&mut client),
            [("1", "applied"), ("2", "failed")].map(|(v, s)| (v.to_owned(), s.to_owned()))
        );
        assert_eq!(count(&mut client, "SELECT count(*) FROM child"), 0);
        // Only 1 is applied, so only 1 is reverted.
        assert_eq!(call(&mut client, "SELECT migrate.down(2)"), 1);
        figure("faults injected", 2);
    }
    // Replaced by a body that works, the same call goes on: no dirty flag, no forced step.
    register(
        &mut client,
        "2",
        "fixed",
        &logged_body(
            "2",
            "INSERT INTO parent VALUES (42); INSERT INTO child VALUES (42)",
        ),
        None,
    );
    assert_invariant(&mut client, 2);
}

#[test]
fn t18_bodies_cannot_harm_the_extension_and_verify_names_what_a_superuser_did() {
    let db = TestDb::new("t18_self_harm");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register(
        &mut client,
        "1",
        "first",
        &logged_body("1", "CREATE TABLE first ()"),
        None,
    );
    assert_eq!(up(&mut client).unwrap(), 1);
    // The direct forms are refused at register, even from a superuser.
    for (body, statement) in [
        ("DROP EXTENSION migrations", "DROP EXTENSION migrations"),
        ("DROP SCHEMA migrate CASCADE", "DROP SCHEMA migrate"),
        (
            "TRUNCATE migrate.events CASCADE",
            "a change to an object of schema migrate",
        ),
        (
            "UPDATE migrate.migrations SET name = 'x'",
            "a change to an object of schema migrate",
        ),
        (
            "DELETE FROM migrate.applied",
            "a change to an object of schema migrate",
        ),
        (
            "ALTER TABLE migrate.applied DROP CONSTRAINT applied_pkey",
            "a change to an object of schema migrate",
        ),
        (
            "ALTER EXTENSION migrations UPDATE",
            "ALTER EXTENSION migrations",
        ),
        (
            "DROP FUNCTION migrate.status(text)",
            "DROP of an object of schema migrate",
        ),
    ] {
        let error = expect_sqlstate(
            client.query_one("SELECT migrate.register('2', 'harm', $1)", &[&body]),
            "0A000",
        );
        assert_eq!(
            error.message(),
            format!("{statement} cannot run inside a migration")
        );
        figure("bad inputs tried", 1);
        figure("bad inputs with a clean error", 1);
    }
    // Through dynamic SQL a superuser's body gets as far as the server lets it: dropping the
    // extension fails the migration cleanly, and everything is still there.
    register(
        &mut client,
        "2",
        "dynamic drop",
        "DO $$ BEGIN EXECUTE 'DROP EXTENSION migrations CASCADE'; END $$",
        None,
    );
    for call in ["SELECT migrate.up()", "CALL migrate.apply()"] {
        let error = server_error(client.batch_execute(call));
        assert_ne!(error.code().code(), "XX000", "{error:?}");
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
                "SELECT count(*) FROM migrate.history() WHERE event = 'up'"
            ),
            1
        );
    }
    register(
        &mut client,
        "2",
        "fixed",
        &logged_body("2", "CREATE TABLE second ()"),
        None,
    );
    assert_invariant(&mut client, 1);

    // A superuser's body that empties the books through dynamic SQL is not stopped, but
    // verify() says what no longer adds up.
    register(
        &mut client,
        "3",
        "dynamic truncate",
        "DO $$ BEGIN EXECUTE 'TRUNCATE migrate.events CASCADE'; END $$",
        None,
    );
    assert_eq!(up(&mut client).unwrap(), 1);
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT version || ' ' || problem FROM migrate.verify()"]
        ),
        ["1 pending", "2 pending"]
    );
}

#[test]
fn t19_dependent_statements_dollar_quotes_and_do_blocks_apply_as_written() {
    let db = TestDb::new("t19_multistatement");
    let mut client = db.connect();
    create_applied_log(&mut client);
    register(
        &mut client,
        "1",
        "dependent",
        &logged_body(
            "1",
            "CREATE TABLE a (id int); INSERT INTO a VALUES (1); CREATE INDEX ON a (id)",
        ),
        None,
    );
    register(
        &mut client,
        "2",
        "quotes",
        &logged_body(
            "2",
            "DO $$ BEGIN INSERT INTO a VALUES (2); RAISE NOTICE 'a ; inside'; END $$;
             CREATE FUNCTION semi() RETURNS text LANGUAGE sql AS $body$ SELECT 'x;y' || $q$;$q$ $body$;
             INSERT INTO a SELECT 3 WHERE semi() = 'x;y;';
             -- a comment; with a semicolon
             /* and ; another */ INSERT INTO a VALUES (4)",
        ),
        None,
    );
    assert_eq!(up(&mut client).unwrap(), 2);
    assert_eq!(
        text_rows(
            &mut client,
            &["SELECT string_agg(id::text, ',' ORDER BY id) FROM a"]
        ),
        ["1,2,3,4"]
    );
    assert_invariant(&mut client, 0);
}
