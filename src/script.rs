//! Splits one migration file with sections into its up and down bodies, and reads the lane
//! its directives ask for. Two layouts:
//!
//! ```sql
//! -- migrate:up transaction:false        -- +goose NO TRANSACTION
//! CREATE INDEX CONCURRENTLY ...;         -- +goose Up
//! -- migrate:down                        CREATE INDEX CONCURRENTLY ...;
//! DROP INDEX CONCURRENTLY ...;           -- +goose Down
//!                                        DROP INDEX CONCURRENTLY ...;
//! ```
//!
//! dbmate's on the left, goose's on the right. The lane belongs to the migration: a
//! `transaction:false` on either dbmate section makes both bodies non-transactional, as goose's
//! file-wide annotation does. Files without sections (sqlx, golang-migrate, Atlas, Flyway) carry
//! their directive on their first lines (`plain_lane`).

use crate::error::MigrateError;
use crate::place::Lane;

#[derive(Debug, PartialEq, Eq)]
pub struct Script<'a> {
    pub up: &'a str,
    /// The text after the down marker, if the marker is present.
    pub down: Option<&'a str>,
    pub lane: Lane,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Dbmate,
    Goose,
}

impl Layout {
    fn up(self) -> &'static str {
        match self {
            Layout::Dbmate => "-- migrate:up",
            Layout::Goose => "-- +goose Up",
        }
    }

    fn down(self) -> &'static str {
        match self {
            Layout::Dbmate => "-- migrate:down",
            Layout::Goose => "-- +goose Down",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    Up {
        non_transactional: bool,
    },
    Down {
        non_transactional: bool,
    },
    /// goose's `NO TRANSACTION`, for the whole file.
    NoTransaction,
    /// A line of the layout that only delimits statements (goose's `StatementBegin`/`End`):
    /// the server's parser splits statements itself.
    Delimiter,
}

/// Recognises a marker line of either layout and checks its options.
fn marker(line: &str) -> Result<Option<(Layout, Marker)>, MigrateError> {
    let Some(rest) = line.trim_end().strip_prefix("--") else {
        return Ok(None);
    };
    let rest = rest.trim_start();
    if let Some(annotation) = rest.strip_prefix("+goose ") {
        let marker = match annotation.trim() {
            "Up" => Marker::Up {
                non_transactional: false,
            },
            "Down" => Marker::Down {
                non_transactional: false,
            },
            "NO TRANSACTION" => Marker::NoTransaction,
            "StatementBegin" | "StatementEnd" => Marker::Delimiter,
            other => {
                return Err(MigrateError::ScriptLayout {
                    problem: format!("unsupported goose annotation \"{other}\""),
                });
            }
        };
        return Ok(Some((Layout::Goose, marker)));
    }
    let (up, options) = if let Some(options) = rest.strip_prefix("migrate:up") {
        (true, options)
    } else if let Some(options) = rest.strip_prefix("migrate:down") {
        (false, options)
    } else {
        return Ok(None);
    };
    if !options.is_empty() && !options.starts_with(char::is_whitespace) {
        return Ok(None);
    }
    let mut non_transactional = false;
    for option in options.split_whitespace() {
        match option {
            "transaction:true" => non_transactional = false,
            "transaction:false" => non_transactional = true,
            other => {
                return Err(MigrateError::ScriptLayout {
                    problem: format!("unknown option \"{other}\""),
                });
            }
        }
    }
    let marker = if up {
        Marker::Up { non_transactional }
    } else {
        Marker::Down { non_transactional }
    };
    Ok(Some((Layout::Dbmate, marker)))
}

fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with("--")
}

/// Whether `text` has the sections of either layout.
pub fn has_sections(text: &str) -> bool {
    text.lines().any(|line| {
        matches!(
            marker(line),
            Ok(Some((_, Marker::Up { .. }))) | Err(MigrateError::ScriptLayout { .. })
        )
    })
}

/// Sections keep their text from the line after the marker, so line numbers in errors count
/// from the marker; trailing white space is dropped.
pub fn split(script: &str) -> Result<Script<'_>, MigrateError> {
    let layout_error = |problem: String| Err(MigrateError::ScriptLayout { problem });
    let mut layout = None;
    let mut up_start = None;
    let mut down_start = None;
    let mut up_end = script.len();
    let mut sql_before_up = false;
    let mut lane = Lane::Transactional;
    let mut offset = 0;
    for line in script.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let Some((found, marker)) = marker(line)? else {
            if up_start.is_none() && !is_blank_or_comment(line) {
                sql_before_up = true;
            }
            continue;
        };
        let layout = *layout.get_or_insert(found);
        if found != layout {
            return layout_error(format!(
                "\"{}\" and \"{}\" markers in one file",
                layout.up(),
                found.up()
            ));
        }
        match marker {
            Marker::Up { .. } if up_start.is_some() => {
                return layout_error(format!("\"{}\" appears twice", layout.up()));
            }
            Marker::Up { non_transactional } => {
                up_start = Some(offset);
                if non_transactional {
                    lane = Lane::NonTransactional;
                }
            }
            Marker::Down { .. } if up_start.is_none() => {
                return layout_error(format!(
                    "\"{}\" comes before \"{}\"",
                    layout.down(),
                    layout.up()
                ));
            }
            Marker::Down { .. } if down_start.is_some() => {
                return layout_error(format!("\"{}\" appears twice", layout.down()));
            }
            Marker::Down { non_transactional } => {
                up_end = line_start;
                down_start = Some(offset);
                if non_transactional {
                    lane = Lane::NonTransactional;
                }
            }
            Marker::NoTransaction => lane = Lane::NonTransactional,
            Marker::Delimiter => {}
        }
    }
    let layout = layout.unwrap_or(Layout::Dbmate);
    let Some(up_start) = up_start else {
        return layout_error(format!("no \"{}\" line", layout.up()));
    };
    if sql_before_up {
        return layout_error(format!("SQL before \"{}\"", layout.up()));
    }
    Ok(Script {
        up: script[up_start..up_end].trim_end(),
        down: down_start.map(|start| script[start..].trim_end()),
        lane,
    })
}

/// The lane a file without sections asks for on its first lines: sqlx's `-- no-transaction`
/// (the file starts with it), or Atlas's `-- atlas:txmode none` among the leading comments.
pub fn plain_lane(text: &str) -> Lane {
    let atlas = text
        .lines()
        .take_while(|line| is_blank_or_comment(line))
        .any(|line| {
            line.trim_start_matches("--")
                .split_whitespace()
                .eq(["atlas:txmode", "none"])
        });
    Lane::from_transactional(!(text.starts_with("-- no-transaction") || atlas))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_and_down_sections() {
        let script = "-- a header comment\n\n-- migrate:up\nCREATE TABLE t (id int);\n\n-- migrate:down\nDROP TABLE t;\n\n";
        assert_eq!(
            split(script).unwrap(),
            Script {
                up: "CREATE TABLE t (id int);",
                down: Some("DROP TABLE t;"),
                lane: Lane::Transactional,
            }
        );
    }

    #[test]
    fn down_is_optional_and_markers_tolerate_spacing_and_crlf() {
        assert_eq!(
            split("--migrate:up\r\nSELECT 1\r\n").unwrap(),
            Script {
                up: "SELECT 1",
                down: None,
                lane: Lane::Transactional,
            }
        );
        assert_eq!(
            split("--   migrate:up transaction:true\nSELECT 1;\n--  migrate:down\n").unwrap(),
            Script {
                up: "SELECT 1;",
                down: Some(""),
                lane: Lane::Transactional,
            }
        );
    }

    #[test]
    fn markers_inside_sql_lines_are_not_markers() {
        let script =
            "-- migrate:up\nSELECT '-- migrate:down';\n-- migrate:upgrade is just a comment\n";
        assert_eq!(split(script).unwrap().down, None);
    }

    #[test]
    fn layout_errors() {
        for (script, problem) in [
            ("CREATE TABLE t ();", "no \"-- migrate:up\" line"),
            (
                "SELECT 1;\n-- migrate:up\nSELECT 2;",
                "SQL before \"-- migrate:up\"",
            ),
            (
                "-- migrate:down\nSELECT 1;\n-- migrate:up\nSELECT 2;",
                "\"-- migrate:down\" comes before \"-- migrate:up\"",
            ),
            (
                "-- migrate:up\nSELECT 1;\n-- migrate:up\n",
                "\"-- migrate:up\" appears twice",
            ),
            (
                "-- migrate:up\n-- migrate:down\n-- migrate:down\n",
                "\"-- migrate:down\" appears twice",
            ),
            (
                "-- +goose Up\nSELECT 1;\n-- migrate:down\n",
                "\"-- +goose Up\" and \"-- migrate:up\" markers in one file",
            ),
            (
                "-- +goose ENVSUB ON\n",
                "unsupported goose annotation \"ENVSUB ON\"",
            ),
            (
                "-- +goose Down\nSELECT 1;",
                "\"-- +goose Down\" comes before",
            ),
            (
                "-- migrate:up fast:yes\nSELECT 1;",
                "unknown option \"fast:yes\"",
            ),
        ] {
            match split(script) {
                Err(MigrateError::ScriptLayout { problem: p }) => {
                    assert!(p.starts_with(problem), "{p} / {problem}")
                }
                other => panic!("{script:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn directives_make_a_migration_non_transactional() {
        let dbmate = split("-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (x);\n-- migrate:down\nDROP INDEX i;\n").unwrap();
        assert_eq!(dbmate.lane, Lane::NonTransactional);
        assert_eq!(dbmate.down, Some("DROP INDEX i;"));
        let goose = "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nCREATE INDEX CONCURRENTLY i ON t (x);\n-- +goose StatementEnd\n\n-- +goose Down\nDROP INDEX CONCURRENTLY i;\n";
        assert_eq!(
            split(goose).unwrap(),
            Script {
                up: "-- +goose StatementBegin\nCREATE INDEX CONCURRENTLY i ON t (x);\n-- +goose StatementEnd",
                down: Some("DROP INDEX CONCURRENTLY i;"),
                lane: Lane::NonTransactional,
            }
        );
        assert_eq!(
            split("-- +goose Up\nSELECT 1;\n").unwrap().lane,
            Lane::Transactional
        );
        for (text, lane) in [
            (
                "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);",
                Lane::NonTransactional,
            ),
            ("-- atlas:txmode none\n\nVACUUM t;", Lane::NonTransactional),
            (
                "-- header\n--atlas:txmode none\nVACUUM t;",
                Lane::NonTransactional,
            ),
            (
                "SELECT 1;\n-- no-transaction\n-- atlas:txmode none",
                Lane::Transactional,
            ),
            ("-- atlas:txmode file\nSELECT 1;", Lane::Transactional),
        ] {
            assert_eq!(plain_lane(text), lane, "{text}");
        }
    }
}
