//! A database dumped from the server of the main PostgreSQL major (`MIGRATIONS_TEST_SOURCE_*`,
//! 15) restores onto the server under test, of another major, with the same registry, history
//! and status(), and goes on from there. Without a source server, the shared one is both.

use migrations_tests::*;

/// The source server's own programs: a server's pg_dump knows what its catalogs hold. (Debian's
/// 15.20 keeps an attribute option, pg_attver, on every column, which its pg_dump leaves out
/// and a newer major's pg_dump writes into the dump, where the newer server refuses it.)
fn source_bin() -> String {
    std::env::var("MIGRATIONS_TEST_SOURCE_PGBIN").unwrap_or_else(|_| pg_bin())
}

fn source_server() -> Server {
    match (
        std::env::var("MIGRATIONS_TEST_SOURCE_PGHOST"),
        std::env::var("MIGRATIONS_TEST_SOURCE_PGPORT"),
    ) {
        (Ok(host), Ok(port)) => Server {
            host,
            port: port
                .parse()
                .expect("MIGRATIONS_TEST_SOURCE_PGPORT is a port number"),
        },
        _ => Server::shared(),
    }
}

#[test]
fn a_dump_from_the_main_major_restores_onto_this_one() {
    let source_server = source_server();
    let source = TestDb::new_on(&source_server, "across_majors_source");
    let mut client = source.connect();
    create_applied_log(&mut client);
    for i in 1..=4 {
        let version = i.to_string();
        let up = logged_body(&version, &format!("CREATE TABLE across{i} (id int)"));
        let down = format!("DROP TABLE across{i}; DELETE FROM applied_log WHERE version = '{i}'");
        register(&mut client, &version, "step", &up, Some(&down));
    }
    assert_eq!(call(&mut client, "SELECT migrate.up('3')"), 3);
    assert_eq!(call(&mut client, "SELECT migrate.down()"), 1);
    let before = snapshot(&mut client);

    let dump = std::env::temp_dir().join(format!("migrations-across-{}.dump", std::process::id()));
    let dump_path = dump.to_str().unwrap();
    run_client_program(
        &source_bin(),
        &source_server,
        "pg_dump",
        &["-Fc", "-f", dump_path, &source.name],
    );
    let target = TestDb::empty("across_majors_target");
    run_client_program(
        &pg_bin(),
        &Server::shared(),
        "pg_restore",
        &["--exit-on-error", "-d", &target.name, dump_path],
    );
    std::fs::remove_file(&dump).unwrap();

    let mut restored = target.connect();
    assert_eq!(snapshot(&mut restored), before);
    // 3 and 4 are pending; what was applied on the source is not applied again.
    assert_invariant(&mut restored, 2);
}
