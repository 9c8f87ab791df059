//! Places migration files of the common tools' layouts into migrations:
//!
//! | tool | files |
//! |---|---|
//! | dbmate | `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down` sections |
//! | golang-migrate, sqlx | `<version>_<name>.up.sql` and `<version>_<name>.down.sql` |
//! | sqlx (simple) | `<version>_<name>.sql` without sections: up only |
//! | diesel | `<version>_<name>/up.sql` and `<version>_<name>/down.sql` |
//! | Flyway | `V<version>__<name>.sql`, undo `U<version>__<name>.sql`; `_` in a version means `.`; repeatable `R__<name>.sql` |
//! | goose | `<version>_<name>.sql` with `-- +goose Up` / `-- +goose Down` sections |
//!
//! A migration is non-transactional when its files say so in their tool's way: sqlx's
//! `-- no-transaction` first line, dbmate's `transaction:false`, goose's `NO TRANSACTION`,
//! Atlas's `-- atlas:txmode none`, Flyway's `V<version>__<name>.sql.conf` with
//! `executeInTransaction=false`, diesel's `metadata.toml` with `run_in_transaction = false`.
//!
//! Paths are relative to the migrations directory. Other files that do not end in `.sql`, and
//! hidden files, are not migrations and are skipped.

use std::collections::BTreeMap;

use crate::error::MigrateError;
use crate::place::Lane;
use crate::script;

/// One migration assembled from one or two files.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FileMigration {
    pub version: String,
    pub name: String,
    pub up: Option<String>,
    pub down: Option<String>,
    /// The files it came from, for error messages.
    pub paths: Vec<String>,
    pub lane: Lane,
}

enum Part {
    Up,
    Down,
    /// A dbmate or goose script with both sections, or a sqlx simple migration (up only).
    Script,
    /// Settings beside the SQL: Flyway's `.sql.conf`, diesel's `metadata.toml`.
    Settings,
    /// A Flyway repeatable migration, named and without a version.
    Repeatable,
}

/// A repeatable migration from one file: its name and body.
#[derive(Debug, PartialEq, Eq)]
pub struct FileRepeatable {
    pub name: String,
    pub body: String,
}

/// What a set of files holds.
#[derive(Debug, Default)]
pub struct Placed {
    pub migrations: Vec<FileMigration>,
    pub repeatables: Vec<FileRepeatable>,
}

/// (version, name, part) of a migration file, or None for a file that is not a migration.
fn place(path: &str) -> Result<Option<(String, String, Part)>, String> {
    let file_name = path.rsplit('/').next().unwrap_or(path);
    let settings = file_name.ends_with(".sql.conf") || file_name == "metadata.toml";
    if file_name.starts_with('.') || !(file_name.ends_with(".sql") || settings) {
        return Ok(None);
    }
    let cannot = || format!("\"{path}\" matches none of the layouts");
    // diesel: <version>_<name>/up.sql, <version>_<name>/down.sql, <version>_<name>/metadata.toml
    if let Some((directory, file)) = path.rsplit_once('/') {
        let directory = directory.rsplit('/').next().unwrap_or(directory);
        let part = match file {
            "up.sql" => Part::Up,
            "down.sql" => Part::Down,
            "metadata.toml" => Part::Settings,
            _ => return Err(cannot()),
        };
        let (version, name) = directory.split_once('_').ok_or_else(cannot)?;
        return Ok(Some((version.to_owned(), name.to_owned(), part)));
    }
    if file_name == "metadata.toml" {
        return Ok(None);
    }
    let (stem, settings) = match file_name.strip_suffix(".sql.conf") {
        Some(stem) => (stem, true),
        None => (&file_name[..file_name.len() - ".sql".len()], false),
    };
    // Flyway: V<version>__<name>.sql, U<version>__<name>.sql, V<version>__<name>.sql.conf
    if let Some((prefix, name)) = stem.split_once("__") {
        let part = match prefix.chars().next() {
            Some('V') if settings => Part::Settings,
            Some('V') => Part::Up,
            Some('U') if !settings => Part::Down,
            Some('R') if prefix == "R" && !settings => Part::Repeatable,
            _ => {
                return Err(format!(
                    "\"{path}\": only versioned (V), undo (U) and repeatable (R) Flyway migrations can be placed"
                ));
            }
        };
        let version = prefix[1..].replace('_', ".");
        return Ok(Some((version, name.replace('_', " "), part)));
    }
    // golang-migrate and sqlx: <version>_<name>.up.sql, .down.sql; dbmate and sqlx simple: .sql
    let (stem, part) = if let Some(stem) = stem.strip_suffix(".up") {
        (stem, Part::Up)
    } else if let Some(stem) = stem.strip_suffix(".down") {
        (stem, Part::Down)
    } else {
        (stem, Part::Script)
    };
    let (version, name) = stem.split_once('_').ok_or_else(cannot)?;
    Ok(Some((version.to_owned(), name.to_owned(), part)))
}

/// The lane Flyway's `executeInTransaction=false` or diesel's `run_in_transaction = false`
/// asks for; other settings are not the runner's.
fn settings_lane(text: &str) -> Lane {
    let non_transactional = text.lines().any(|line| {
        let Some((key, value)) = line.split_once('=') else {
            return false;
        };
        matches!(key.trim(), "executeInTransaction" | "run_in_transaction")
            && value.trim() == "false"
    });
    Lane::from_transactional(!non_transactional)
}

/// Groups `(path, content)` files into migrations, in no particular order, and repeatable
/// migrations. A file that matches no layout, a down file without its up, or two files for one
/// part are errors naming the files.
pub fn place_all(files: &[(String, String)]) -> Result<Placed, MigrateError> {
    let problem = |problem: String| MigrateError::ImportLayout { problem };
    let mut by_version: BTreeMap<String, FileMigration> = BTreeMap::new();
    let mut repeatables = Vec::new();
    for (path, content) in files {
        let Some((version, name, part)) = place(path).map_err(problem)? else {
            continue;
        };
        if let Part::Repeatable = part {
            repeatables.push(FileRepeatable {
                name,
                body: content.clone(),
            });
            continue;
        }
        let migration = by_version
            .entry(version.clone())
            .or_insert_with(|| FileMigration {
                version: version.clone(),
                name: name.clone(),
                ..FileMigration::default()
            });
        if migration.name != name {
            return Err(problem(format!(
                "\"{path}\" names version {version} \"{name}\", but \"{}\" names it \"{}\"",
                migration.paths[0], migration.name
            )));
        }
        migration.paths.push(path.clone());
        let lane = match part {
            Part::Settings => settings_lane(content),
            Part::Up | Part::Down | Part::Script if !script::has_sections(content) => {
                script::plain_lane(content)
            }
            _ => Lane::Transactional,
        };
        if lane == Lane::NonTransactional {
            migration.lane = lane;
        }
        let (up, down) = match part {
            Part::Settings | Part::Repeatable => (None, None),
            Part::Up => (Some(content.clone()), None),
            Part::Down => (None, Some(content.clone())),
            Part::Script if script::has_sections(content) => {
                let sections = script::split(content).map_err(|error| match error {
                    MigrateError::ScriptLayout { problem: p } => {
                        problem(format!("\"{path}\": {p}"))
                    }
                    other => other,
                })?;
                if sections.lane == Lane::NonTransactional {
                    migration.lane = sections.lane;
                }
                (
                    Some(sections.up.to_owned()),
                    sections.down.map(str::to_owned),
                )
            }
            Part::Script => (Some(content.clone()), None),
        };
        for (slot, text, which) in [
            (&mut migration.up, up, "up"),
            (&mut migration.down, down, "down"),
        ] {
            if let Some(text) = text {
                if slot.is_some() {
                    return Err(problem(format!(
                        "version {version} has two {which} files: {}",
                        migration.paths.join(", ")
                    )));
                }
                *slot = Some(text);
            }
        }
    }
    if let Some(orphan) = by_version.values().find(|m| m.up.is_none()) {
        let what = if orphan.down.is_some() {
            "a down file"
        } else {
            "a settings file"
        };
        return Err(problem(format!(
            "\"{}\" is {what} without an up file",
            orphan.paths[0]
        )));
    }
    Ok(Placed {
        migrations: by_version.into_values().collect(),
        repeatables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect()
    }

    fn summary(list: &[(&str, &str)]) -> Vec<(String, String, Option<String>, Option<String>)> {
        place_all(&files(list))
            .unwrap()
            .migrations
            .into_iter()
            .map(|m| (m.version, m.name, m.up, m.down))
            .collect()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn every_layout() {
        assert_eq!(
            summary(&[
                (
                    "20260101_dbmate.sql",
                    "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n"
                ),
                ("2_golang.up.sql", "SELECT 3"),
                ("2_golang.down.sql", "SELECT 4"),
                ("3_simple.sql", "SELECT 5"),
                ("2023-01-01-120000_diesel/up.sql", "SELECT 6"),
                ("2023-01-01-120000_diesel/down.sql", "SELECT 7"),
                ("V1_1__flyway_thing.sql", "SELECT 8"),
                ("U1_1__flyway_thing.sql", "SELECT 9"),
                ("README.md", "not a migration"),
                (".keep", ""),
                ("2023-01-01-120000_diesel/README", "skipped too"),
            ]),
            vec![
                (
                    "1.1".into(),
                    "flyway thing".into(),
                    some("SELECT 8"),
                    some("SELECT 9")
                ),
                (
                    "2".into(),
                    "golang".into(),
                    some("SELECT 3"),
                    some("SELECT 4")
                ),
                (
                    "2023-01-01-120000".into(),
                    "diesel".into(),
                    some("SELECT 6"),
                    some("SELECT 7")
                ),
                (
                    "20260101".into(),
                    "dbmate".into(),
                    some("SELECT 1;"),
                    some("SELECT 2;")
                ),
                ("3".into(), "simple".into(), some("SELECT 5"), None),
            ]
        );
    }

    #[test]
    fn files_that_cannot_be_placed_are_named() {
        for (list, expected) in [
            (
                vec![("nodash.sql", "SELECT 1")],
                "\"nodash.sql\" matches none of the layouts",
            ),
            (
                vec![("B1__baseline.sql", "SELECT 1")],
                "\"B1__baseline.sql\": only versioned (V), undo (U) and repeatable (R) Flyway migrations can be placed",
            ),
            (
                vec![("1_x.down.sql", "SELECT 1")],
                "\"1_x.down.sql\" is a down file without an up file",
            ),
            (
                vec![("1_x.up.sql", "SELECT 1"), ("1_x.sql", "SELECT 2")],
                "version 1 has two up files: 1_x.sql, 1_x.up.sql",
            ),
            (
                vec![("1_x.up.sql", "SELECT 1"), ("1_y.down.sql", "SELECT 2")],
                "\"1_y.down.sql\" names version 1 \"y\", but \"1_x.up.sql\" names it \"x\"",
            ),
            (
                vec![("1_x/other.sql", "SELECT 1")],
                "\"1_x/other.sql\" matches none of the layouts",
            ),
            (
                vec![("1_x.sql", "-- migrate:up transaction:maybe\nSELECT 1")],
                "\"1_x.sql\": unknown option \"transaction:maybe\"",
            ),
            (
                vec![("V1__x.sql.conf", "executeInTransaction=false")],
                "\"V1__x.sql.conf\" is a settings file without an up file",
            ),
        ] {
            let mut list = list;
            list.sort();
            match place_all(&files(&list)) {
                Err(MigrateError::ImportLayout { problem }) => {
                    assert!(problem.starts_with(expected), "{problem} / {expected}")
                }
                other => panic!("{list:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_tool_says_non_transactional_its_own_way() {
        let lanes = |list: &[(&str, &str)]| -> Vec<(String, Lane)> {
            place_all(&files(list))
                .unwrap()
                .migrations
                .into_iter()
                .map(|m| (m.version, m.lane))
                .collect()
        };
        let cic = "CREATE INDEX CONCURRENTLY i ON t (x);";
        assert_eq!(
            lanes(&[
                ("1_sqlx.up.sql", &format!("-- no-transaction\n{cic}")),
                ("1_sqlx.down.sql", "DROP INDEX i;"),
                (
                    "2_dbmate.sql",
                    &format!("-- migrate:up transaction:false\n{cic}")
                ),
                (
                    "3_goose.sql",
                    &format!("-- +goose NO TRANSACTION\n-- +goose Up\n{cic}")
                ),
                ("4_atlas.sql", &format!("-- atlas:txmode none\n\n{cic}")),
                ("V5__flyway.sql", cic),
                ("V5__flyway.sql.conf", "executeInTransaction=false\n"),
                ("6_diesel/up.sql", cic),
                ("6_diesel/metadata.toml", "run_in_transaction = false\n"),
                ("7_plain.sql", "SELECT 1;"),
                ("V8__flyway.sql", "SELECT 1;"),
                ("V8__flyway.sql.conf", "executeInTransaction=true\n"),
            ]),
            [
                ("1", Lane::NonTransactional),
                ("2", Lane::NonTransactional),
                ("3", Lane::NonTransactional),
                ("4", Lane::NonTransactional),
                ("5", Lane::NonTransactional),
                ("6", Lane::NonTransactional),
                ("7", Lane::Transactional),
                ("8", Lane::Transactional),
            ]
            .map(|(version, lane)| (version.to_owned(), lane))
        );
    }

    #[test]
    fn flyway_repeatables_are_placed_by_name() {
        let placed = place_all(&files(&[
            (
                "R__refresh_views.sql",
                "CREATE OR REPLACE VIEW v AS SELECT 1",
            ),
            ("V1__create.sql", "CREATE TABLE t ()"),
        ]))
        .unwrap();
        assert_eq!(
            placed.repeatables,
            [FileRepeatable {
                name: "refresh views".into(),
                body: "CREATE OR REPLACE VIEW v AS SELECT 1".into()
            }]
        );
        assert_eq!(placed.migrations.len(), 1);
    }
}
