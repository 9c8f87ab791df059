//! `#[pg_test]`s of the SQL functions inside one (rolled back) transaction: register policies,
//! version order and SQLSTATEs. Anything needing commits or several connections is in pgrx-tests/.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// The SQLSTATE `query` fails with, or `00000`; PL/pgSQL's handler is a subtransaction, so the
    /// test's transaction goes on.
    fn sqlstate(query: &str) -> String {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.sqlstate(query text) RETURNS text LANGUAGE plpgsql AS $$
             BEGIN EXECUTE query; RETURN '00000'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$",
        )
        .unwrap();
        Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate($1)", &[query.into()])
            .unwrap()
            .unwrap()
    }

    fn register(version: &str, up_sql: &str) -> String {
        Spi::get_one_with_args::<String>(
            "SELECT migrate.register($1, 'm', $2)",
            &[version.into(), up_sql.into()],
        )
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn status_orders_versions_naturally() {
        for version in [
            "10",
            "2",
            "1.10",
            "1.9",
            "1",
            "20260116090000",
            "20260115120000",
        ] {
            register(version, "SELECT 1");
        }
        let order = Spi::get_one::<String>("SELECT string_agg(version, ' ') FROM migrate.status()")
            .unwrap()
            .unwrap();
        assert_eq!(order, "1 1.9 1.10 2 10 20260115120000 20260116090000");
        assert_eq!(
            sqlstate("SELECT migrate.register('0010', 'm', 'SELECT 1')"),
            "42710"
        );
        assert_eq!(
            sqlstate("SELECT migrate.register('1.09', 'm', 'SELECT 1')"),
            "42710"
        );
    }

    #[pg_test]
    fn register_policies_and_checksums() {
        assert_eq!(register("1", "CREATE TABLE t1 ()"), "registered");
        assert_eq!(register("1", "CREATE TABLE t1 ()"), "unchanged");
        assert_eq!(register("1", "CREATE TABLE t1 (x int)"), "updated");
        let same = Spi::get_one::<bool>(
            "SELECT checksum = encode(sha256(convert_to('CREATE TABLE t1 (x int)', 'UTF8')), 'hex') FROM migrate.status()",
        )
        .unwrap();
        assert_eq!(same, Some(true));
        assert_eq!(Spi::get_one::<i32>("SELECT migrate.up()").unwrap(), Some(1));
        assert_eq!(
            sqlstate("SELECT migrate.register('1', 'm', 'CREATE TABLE t1 (y int)')"),
            "55000"
        );
        assert_eq!(register("1", "CREATE TABLE t1 (x int)"), "unchanged");
    }

    #[pg_test]
    fn sqlstates_of_bad_calls() {
        register("1", "CREATE TABLE t1 ()");
        for (query, expected) in [
            ("SELECT migrate.register(NULL, 'm', 'SELECT 1')", "22004"),
            ("SELECT migrate.register('v 1', 'm', 'SELECT 1')", "22023"),
            ("SELECT migrate.register('2', 'm', '')", "22023"),
            ("SELECT migrate.register('2', 'm', 'VACUUM')", "0A000"),
            ("SELECT migrate.register('2', 'm', 'COMMIT')", "0A000"),
            ("SELECT migrate.register('2', 'm', 'SELEC 1')", "42601"),
            (
                "SELECT migrate.register_script('2', 'm', 'SELECT 1')",
                "22023",
            ),
            ("SELECT migrate.up('9')", "42704"),
            ("SELECT migrate.down_to('9')", "42704"),
            ("SELECT migrate.down(-1)", "22023"),
            ("SELECT migrate.down(1, NULL)", "22004"),
            ("SELECT migrate.up(NULL, '')", "22023"),
        ] {
            assert_eq!(sqlstate(query), expected, "{query}");
        }
        assert_eq!(Spi::get_one::<i32>("SELECT migrate.up()").unwrap(), Some(1));
        assert_eq!(sqlstate("SELECT migrate.down()"), "55000", "no down body");
        register("0", "SELECT 1");
        assert_eq!(sqlstate("SELECT migrate.up()"), "55000", "out of order");
        Spi::run("SET LOCAL migrate.allow_out_of_order = on").unwrap();
        assert_eq!(Spi::get_one::<i32>("SELECT migrate.up()").unwrap(), Some(1));
    }

    #[pg_test]
    fn register_script_stores_both_sections() {
        let result = Spi::get_one::<String>(
            "SELECT migrate.register_script('1', 's', E'-- migrate:up\\nCREATE TABLE s ();\\n-- migrate:down\\nDROP TABLE s;\\n')",
        )
        .unwrap();
        assert_eq!(result.as_deref(), Some("registered"));
        let bodies =
            Spi::get_two::<String, String>("SELECT up_sql, down_sql FROM migrate.migrations")
                .unwrap();
        assert_eq!(
            bodies,
            (
                Some("CREATE TABLE s ();".into()),
                Some("DROP TABLE s;".into())
            )
        );
        assert_eq!(Spi::get_one::<i32>("SELECT migrate.up()").unwrap(), Some(1));
        assert_eq!(
            Spi::get_one::<i32>("SELECT migrate.down()").unwrap(),
            Some(1)
        );
        assert_eq!(
            Spi::get_one::<bool>("SELECT to_regclass('s') IS NULL").unwrap(),
            Some(true)
        );
    }
}
