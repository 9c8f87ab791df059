//! Splits one migration file in the dbmate layout into its up and down sections:
//!
//! ```sql
//! -- migrate:up
//! CREATE TABLE t (id int);
//! -- migrate:down
//! DROP TABLE t;
//! ```

use crate::error::MigrateError;

#[derive(Debug, PartialEq, Eq)]
pub struct Script<'a> {
    pub up: &'a str,
    /// The text after `-- migrate:down`, if the marker is present.
    pub down: Option<&'a str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    Up,
    Down,
}

/// Recognises `-- migrate:up` / `-- migrate:down` lines and checks their options: dbmate's
/// `transaction:false` asks for something a migration inside a transaction cannot do.
fn marker(line: &str) -> Result<Option<Marker>, MigrateError> {
    let Some(rest) = line.trim_end().strip_prefix("--") else {
        return Ok(None);
    };
    let rest = rest.trim_start();
    let (marker, options) = if let Some(options) = rest.strip_prefix("migrate:up") {
        (Marker::Up, options)
    } else if let Some(options) = rest.strip_prefix("migrate:down") {
        (Marker::Down, options)
    } else {
        return Ok(None);
    };
    if !options.is_empty() && !options.starts_with(char::is_whitespace) {
        return Ok(None);
    }
    for option in options.split_whitespace() {
        match option {
            "transaction:true" => {}
            "transaction:false" => {
                return Err(MigrateError::ScriptLayout {
                    problem: "\"transaction:false\" is not supported: every migration runs inside a transaction".into(),
                });
            }
            other => {
                return Err(MigrateError::ScriptLayout {
                    problem: format!("unknown option \"{other}\""),
                });
            }
        }
    }
    Ok(Some(marker))
}

fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with("--")
}

/// Sections keep their text from the line after the marker, so line numbers in errors count
/// from the marker; trailing white space is dropped.
pub fn split(script: &str) -> Result<Script<'_>, MigrateError> {
    let mut up_start = None;
    let mut down_start = None;
    let mut up_end = script.len();
    let mut sql_before_up = false;
    let mut offset = 0;
    for line in script.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        match marker(line)? {
            Some(Marker::Up) if up_start.is_some() => {
                return Err(MigrateError::ScriptLayout {
                    problem: "\"-- migrate:up\" appears twice".into(),
                });
            }
            Some(Marker::Up) => up_start = Some(offset),
            Some(Marker::Down) if up_start.is_none() => {
                return Err(MigrateError::ScriptLayout {
                    problem: "\"-- migrate:down\" comes before \"-- migrate:up\"".into(),
                });
            }
            Some(Marker::Down) if down_start.is_some() => {
                return Err(MigrateError::ScriptLayout {
                    problem: "\"-- migrate:down\" appears twice".into(),
                });
            }
            Some(Marker::Down) => {
                up_end = line_start;
                down_start = Some(offset);
            }
            None if up_start.is_none() && !is_blank_or_comment(line) => sql_before_up = true,
            None => {}
        }
    }
    let Some(up_start) = up_start else {
        return Err(MigrateError::ScriptLayout {
            problem: "no \"-- migrate:up\" line".into(),
        });
    };
    if sql_before_up {
        return Err(MigrateError::ScriptLayout {
            problem: "SQL before \"-- migrate:up\"".into(),
        });
    }
    Ok(Script {
        up: script[up_start..up_end].trim_end(),
        down: down_start.map(|start| script[start..].trim_end()),
    })
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
                down: Some("DROP TABLE t;")
            }
        );
    }

    #[test]
    fn down_is_optional_and_markers_tolerate_spacing_and_crlf() {
        assert_eq!(
            split("--migrate:up\r\nSELECT 1\r\n").unwrap(),
            Script {
                up: "SELECT 1",
                down: None
            }
        );
        assert_eq!(
            split("--   migrate:up transaction:true\nSELECT 1;\n--  migrate:down\n").unwrap(),
            Script {
                up: "SELECT 1;",
                down: Some("")
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
                "-- migrate:up transaction:false\nSELECT 1;",
                "\"transaction:false\" is not supported",
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
}
