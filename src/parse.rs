//! Reads bodies with the server's own parser: splits them into statements with their line
//! numbers, and refuses what `refuse` says a body may not hold.

use crate::error::MigrateError;
use crate::place::{Lane, Place, Position};
use crate::postgres::parser::{self, Leftover, ParseError};
use crate::refuse;

/// One top-level statement of a body, as a byte range of the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub start: usize,
    pub end: usize,
    /// The line of the statement's first token (leading comments skipped).
    pub line: usize,
    /// Whether PostgreSQL runs it only at top level, outside a transaction block (the
    /// non-transactional lane runs it so).
    pub top_level: bool,
    /// What it leaves half-done when it does not finish (the concurrent forms).
    pub leftover: Option<Leftover>,
}

/// Splits `sql` into its top-level statements. Fails, naming `place` with a statement and line,
/// on a syntax error, a psql meta-command, a body without statements, or a statement a body of
/// `lane` may not hold.
pub fn statements(sql: &str, place: &Place, lane: Lane) -> Result<Vec<Statement>, MigrateError> {
    let parsed = parser::parse(sql).map_err(|error| parse_failure(sql, error, place))?;
    if parsed.is_empty() {
        return Err(MigrateError::EmptyBody {
            place: place.clone(),
        });
    }
    let mut lines = Lines::default();
    parsed
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let line = lines.line_at(sql, first_token(sql, raw.start));
            let top_level = refuse::needs_top_level(raw.kind);
            if let Some((statement, hint)) = refuse::refusal(&raw, lane) {
                return Err(MigrateError::RefusedStatement {
                    statement,
                    hint,
                    in_transaction: top_level && lane.is_transactional(),
                    place: place.at(Position::Statement {
                        number: index + 1,
                        line,
                    }),
                });
            }
            Ok(Statement {
                start: raw.start,
                end: raw.end,
                line,
                top_level,
                leftover: raw.leftover,
            })
        })
        .collect()
}

fn parse_failure(sql: &str, error: ParseError, place: &Place) -> MigrateError {
    let offset = usize::try_from(error.position - 1)
        .ok()
        .and_then(|chars| sql.char_indices().nth(chars))
        .map(|(offset, _)| offset);
    let Some(offset) = offset else {
        return MigrateError::BodyFailed {
            error: error.error,
            place: place.clone(),
        };
    };
    let place = place.at(Position::Line(line_of(sql, offset)));
    if sql[offset..].starts_with('\\') {
        let command = sql[offset..]
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("\\")
            .to_owned();
        return MigrateError::MetaCommand { command, place };
    }
    MigrateError::BodyFailed {
        error: error.error,
        place,
    }
}

fn line_of(sql: &str, offset: usize) -> usize {
    Lines::default().line_at(sql, offset)
}

/// Line numbers of increasing offsets, counting each newline once: a body of a hundred thousand
/// statements is split in linear time.
#[derive(Default)]
struct Lines {
    offset: usize,
    newlines: usize,
}

impl Lines {
    fn line_at(&mut self, sql: &str, offset: usize) -> usize {
        debug_assert!(offset >= self.offset, "offsets must increase");
        self.newlines += sql.as_bytes()[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.offset = offset;
        1 + self.newlines
    }
}

/// Skips white space and comments from `offset`: a statement's location includes whatever
/// follows the previous semicolon.
fn first_token(sql: &str, mut offset: usize) -> usize {
    let bytes = sql.as_bytes();
    loop {
        while offset < bytes.len() && bytes[offset].is_ascii_whitespace() {
            offset += 1;
        }
        if bytes[offset..].starts_with(b"--") {
            while offset < bytes.len() && bytes[offset] != b'\n' {
                offset += 1;
            }
        } else if bytes[offset..].starts_with(b"/*") {
            let mut depth = 0;
            while offset < bytes.len() {
                if bytes[offset..].starts_with(b"/*") {
                    depth += 1;
                    offset += 2;
                } else if bytes[offset..].starts_with(b"*/") {
                    depth -= 1;
                    offset += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    offset += 1;
                }
            }
        } else {
            return offset;
        }
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use super::statements;
    use crate::error::MigrateError;
    use crate::place::{Body, DEFAULT_PROJECT, Lane, Place, Position, Project};
    use crate::postgres::parser::Leftover;

    fn place() -> Place {
        let project = Project::new(DEFAULT_PROJECT).unwrap();
        Place::whole(&project, "1", "t", Body::Up)
    }

    fn texts(sql: &str) -> Vec<(String, usize)> {
        statements(sql, &place(), Lane::Transactional)
            .unwrap()
            .into_iter()
            .map(|s| (sql[s.start..s.end].trim().to_owned(), s.line))
            .collect()
    }

    #[pg_test]
    fn splits_statements_and_finds_their_lines() {
        let sql = "-- header\nCREATE TABLE a (x text);\n\n/* a\n   comment */ INSERT INTO a VALUES ('; not a split');\nDO $$ BEGIN RAISE NOTICE ';'; END $$;\nSELECT 1";
        let found = texts(sql);
        assert_eq!(found.len(), 4);
        assert_eq!(found[0].1, 2, "leading comments do not count");
        assert_eq!(
            found[1],
            (
                "/* a\n   comment */ INSERT INTO a VALUES ('; not a split')".to_owned(),
                5
            )
        );
        assert_eq!(found[2].1, 6);
        assert_eq!(
            found[3],
            ("SELECT 1".to_owned(), 7),
            "a last statement without semicolon"
        );
    }

    #[pg_test]
    fn syntax_errors_and_meta_commands_carry_their_line() {
        match statements("SELECT 1;\n\nSELEC 2;", &place(), Lane::Transactional) {
            Err(MigrateError::BodyFailed { error, place }) => {
                assert_eq!(error.code, PgSqlErrorCode::ERRCODE_SYNTAX_ERROR);
                assert_eq!(place.position, Position::Line(3));
            }
            other => panic!("{other:?}"),
        }
        match statements("SELECT 1;\n  \\set x 1\n", &place(), Lane::Transactional) {
            Err(MigrateError::MetaCommand { command, place }) => {
                assert_eq!(command, "\\set");
                assert_eq!(place.position, Position::Line(2));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            statements(" -- nothing\n/* at all */", &place(), Lane::Transactional),
            Err(MigrateError::EmptyBody { .. })
        ));
    }

    #[pg_test]
    fn refuses_what_cannot_run_in_a_function_and_only_that() {
        for (sql, kind) in [
            (
                "CREATE INDEX CONCURRENTLY i ON t (x)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "DROP INDEX CONCURRENTLY IF EXISTS i",
                "DROP INDEX CONCURRENTLY",
            ),
            ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
            ("REINDEX DATABASE d", "REINDEX DATABASE"),
            ("REINDEX SYSTEM d", "REINDEX SYSTEM"),
            ("VACUUM FULL", "VACUUM"),
            ("ALTER SYSTEM RESET ALL", "ALTER SYSTEM"),
            (
                "ALTER DATABASE d SET TABLESPACE ts",
                "ALTER DATABASE SET TABLESPACE",
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
                "CREATE SUBSCRIPTION",
            ),
            ("ABORT", "ROLLBACK"),
            ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
            ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"),
            (
                "DROP EXTENSION IF EXISTS migrations CASCADE",
                "DROP EXTENSION migrations",
            ),
            ("DROP SCHEMA x, migrate CASCADE", "DROP SCHEMA migrate"),
            (
                "DROP TABLE public.t, migrate.events",
                "DROP of an object of schema migrate",
            ),
            (
                "DROP FUNCTION migrate.status(text)",
                "DROP of an object of schema migrate",
            ),
            (
                "DROP TRIGGER t ON migrate.events",
                "DROP of an object of schema migrate",
            ),
            (
                "ALTER EXTENSION migrations UPDATE",
                "ALTER EXTENSION migrations",
            ),
            (
                "ALTER EXTENSION migrations DROP TABLE migrate.events",
                "ALTER EXTENSION migrations",
            ),
            (
                "CREATE OR REPLACE FUNCTION migrate.status(text) RETURNS int LANGUAGE sql AS 'SELECT 1'",
                "CREATE OR REPLACE FUNCTION in schema migrate",
            ),
            (
                "TRUNCATE t, migrate.events CASCADE",
                "a change to an object of schema migrate",
            ),
            (
                "DELETE FROM migrate.applied",
                "a change to an object of schema migrate",
            ),
            (
                "UPDATE migrate.migrations SET up_sql = ''",
                "a change to an object of schema migrate",
            ),
            (
                "INSERT INTO migrate.applied SELECT * FROM x",
                "a change to an object of schema migrate",
            ),
            (
                "ALTER TABLE migrate.applied DROP CONSTRAINT applied_pkey",
                "a change to an object of schema migrate",
            ),
            (
                "ALTER TABLE migrate.events RENAME TO e",
                "a change to an object of schema migrate",
            ),
            (
                "ALTER SCHEMA migrate RENAME TO m",
                "a change to an object of schema migrate",
            ),
            (
                "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
                "DECLARE CURSOR WITH HOLD",
            ),
            ("PREPARE p AS SELECT 1", "PREPARE"),
            ("LISTEN channel", "LISTEN"),
            ("LOAD 'auto_explain'", "LOAD"),
        ] {
            match statements(&format!("SELECT 1;\n{sql}"), &place(), Lane::Transactional) {
                Err(MigrateError::RefusedStatement {
                    statement, place, ..
                }) => {
                    assert_eq!(statement, kind);
                    assert_eq!(place.position, Position::Statement { number: 2, line: 2 });
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        for sql in [
            "REINDEX (CONCURRENTLY false) TABLE t",
            "REINDEX TABLE t",
            "ANALYZE t",
            "CLUSTER t",
            "ALTER DATABASE d SET work_mem = '8MB'",
            "ALTER TABLE p DETACH PARTITION p1",
            "DISCARD PLANS",
            "COPY t FROM '/tmp/file'",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
            "CREATE INDEX i ON t (x)",
            // Session state the body itself ends, and messages sent at commit.
            "DECLARE c CURSOR FOR SELECT 1",
            "CLOSE c",
            "UNLISTEN *",
            "NOTIFY channel, 'reload'",
            "CREATE TEMP TABLE scratch (x int)",
            // Reading the books, granting on them, and names that only look alike are fine.
            "SELECT * FROM migrate.status()",
            "GRANT EXECUTE ON FUNCTION migrate.status(text) TO reader",
            "DELETE FROM app.migrate",
            "DROP TABLE migrate",
            "DROP SCHEMA migrations",
            "DROP EXTENSION pgcrypto",
            "CREATE FUNCTION migrate_helper() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "ALTER TABLE app.events ADD COLUMN migrate int",
        ] {
            assert!(
                statements(sql, &place(), Lane::Transactional).is_ok(),
                "{sql}"
            );
        }
    }

    #[pg_test]
    fn the_non_transactional_lane_takes_what_needs_top_level() {
        let sql = "CREATE INDEX CONCURRENTLY i ON app.t (x);\nVACUUM (ANALYZE) app.t;\nSELECT 1;\nDROP INDEX CONCURRENTLY app.i;\nREINDEX INDEX CONCURRENTLY app.j";
        let found = statements(sql, &place(), Lane::NonTransactional).unwrap();
        let top_level: Vec<bool> = found.iter().map(|s| s.top_level).collect();
        assert_eq!(top_level, [true, true, false, true, true]);
        let leftovers: Vec<Option<Leftover>> = found.iter().map(|s| s.leftover.clone()).collect();
        assert_eq!(
            leftovers,
            [
                Some(Leftover::Index {
                    table: "app.t".into(),
                    index: Some("i".into())
                }),
                None,
                None,
                Some(Leftover::Drop(vec!["app.i".into()])),
                Some(Leftover::Rebuild {
                    relation: "app.j".into(),
                    is_index: true
                }),
            ]
        );
        for (sql, kind) in [
            (
                "CREATE INDEX CONCURRENTLY ON t (x)",
                "CREATE INDEX CONCURRENTLY without an index name",
            ),
            ("COMMIT", "COMMIT"),
            ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM"),
            ("LISTEN channel", "LISTEN"),
        ] {
            match statements(sql, &place(), Lane::NonTransactional) {
                Err(MigrateError::RefusedStatement { statement, .. }) => {
                    assert_eq!(statement, kind)
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
    }
}
