//! Places migration files of the common tools' layouts into migrations:
//!
//! | tool | files |
//! |---|---|
//! | dbmate | `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down` sections |
//! | golang-migrate, sqlx | `<version>_<name>.up.sql` and `<version>_<name>.down.sql` |
//! | sqlx (simple) | `<version>_<name>.sql` without sections: up only |
//! | diesel | `<version>_<name>/up.sql` and `<version>_<name>/down.sql` |
//! | Flyway | `V<version>__<name>.sql`, undo `U<version>__<name>.sql`; `_` in a version means `.` |
//!
//! Paths are relative to the migrations directory. Files that do not end in `.sql`, and hidden
//! files, are not migrations and are skipped.

use std::collections::BTreeMap;

use crate::error::MigrateError;
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
}

enum Part {
    Up,
    Down,
    /// A dbmate script with both sections, or a sqlx simple migration (up only).
    Script,
}

/// (version, name, part) of a migration file, or None for a file that is not a migration.
fn place(path: &str) -> Result<Option<(String, String, Part)>, String> {
    let file_name = path.rsplit('/').next().unwrap_or(path);
    if file_name.starts_with('.') || !file_name.ends_with(".sql") {
        return Ok(None);
    }
    let cannot = || format!("\"{path}\" matches none of the layouts");
    // diesel: <version>_<name>/up.sql, <version>_<name>/down.sql
    if let Some((directory, file)) = path.rsplit_once('/') {
        let directory = directory.rsplit('/').next().unwrap_or(directory);
        let part = match file {
            "up.sql" => Part::Up,
            "down.sql" => Part::Down,
            _ => return Err(cannot()),
        };
        let (version, name) = directory.split_once('_').ok_or_else(cannot)?;
        return Ok(Some((version.to_owned(), name.to_owned(), part)));
    }
    let stem = &file_name[..file_name.len() - ".sql".len()];
    // Flyway: V<version>__<name>.sql, U<version>__<name>.sql
    if let Some((prefix, name)) = stem.split_once("__") {
        let part = match prefix.chars().next() {
            Some('V') => Part::Up,
            Some('U') => Part::Down,
            _ => {
                return Err(format!(
                    "\"{path}\": only versioned (V) and undo (U) Flyway migrations can be placed"
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

fn has_sections(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start_matches("--").trim_start();
        line.starts_with("migrate:up")
    })
}

/// Groups `(path, content)` files into migrations, in no particular order. A file that matches
/// no layout, a down file without its up, or two files for one part are errors naming the files.
pub fn migrations(files: &[(String, String)]) -> Result<Vec<FileMigration>, MigrateError> {
    let problem = |problem: String| MigrateError::ImportLayout { problem };
    let mut by_version: BTreeMap<String, FileMigration> = BTreeMap::new();
    for (path, content) in files {
        let Some((version, name, part)) = place(path).map_err(problem)? else {
            continue;
        };
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
        let (up, down) = match part {
            Part::Up => (Some(content.clone()), None),
            Part::Down => (None, Some(content.clone())),
            Part::Script if has_sections(content) => {
                let sections = script::split(content).map_err(|error| match error {
                    MigrateError::ScriptLayout { problem: p } => {
                        problem(format!("\"{path}\": {p}"))
                    }
                    other => other,
                })?;
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
        return Err(problem(format!(
            "\"{}\" is a down file without an up file",
            orphan.paths[0]
        )));
    }
    Ok(by_version.into_values().collect())
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
        migrations(&files(list))
            .unwrap()
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
                vec![("R__view.sql", "SELECT 1")],
                "\"R__view.sql\": only versioned (V) and undo (U) Flyway migrations can be placed",
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
                vec![("1_x.sql", "-- migrate:up transaction:false\nSELECT 1")],
                "\"1_x.sql\": \"transaction:false\" is not supported",
            ),
        ] {
            let mut list = list;
            list.sort();
            match migrations(&files(&list)) {
                Err(MigrateError::ImportLayout { problem }) => {
                    assert!(problem.starts_with(expected), "{problem} / {expected}")
                }
                other => panic!("{list:?}: {other:?}"),
            }
        }
    }
}
