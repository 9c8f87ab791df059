//! `register` and `register_script`: checking and storing migrations.

use std::path::{Path, PathBuf};

use pgrx::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::{Body, MigrateError, Place, Position, counted};
use crate::store::{self, NewMigration, Registered};
use crate::{files, parse, script, session, version};

/// The outcome `register` reports.
pub const REGISTERED: &str = "registered";
pub const UNCHANGED: &str = "unchanged";
pub const UPDATED: &str = "updated";

pub fn checksum(up_sql: &str) -> String {
    Sha256::digest(up_sql.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

pub struct Request<'a> {
    pub project: &'a str,
    pub version: &'a str,
    pub name: &'a str,
    pub up_sql: &'a str,
    pub down_sql: Option<&'a str>,
}

impl Request<'_> {
    fn place(&self, body: Body) -> Place {
        Place {
            project: self.project.to_owned(),
            version: self.version.to_owned(),
            name: self.name.to_owned(),
            body,
            position: Position::Whole,
        }
    }
}

/// Stores a migration, or finds it already there: identical is a no-op, a changed pending one
/// is replaced, a changed up body of an applied one is refused.
pub fn register(
    function: &'static str,
    request: &Request<'_>,
) -> Result<&'static str, MigrateError> {
    session::refuse_nested(function)?;
    session::require_read_committed(function)?;
    version::check_project(request.project)?;
    version::check_version(request.version)?;
    version::check_name(request.name)?;
    parse::statements(request.up_sql, &request.place(Body::Up))?;
    if let Some(down_sql) = request.down_sql {
        parse::statements(down_sql, &request.place(Body::Down))?;
    }
    let checksum = checksum(request.up_sql);
    let version_key = version::sort_key(request.version);
    let migration = NewMigration {
        project: request.project,
        version: request.version,
        name: request.name,
        up_sql: request.up_sql,
        down_sql: request.down_sql,
        checksum: &checksum,
        version_key: &version_key,
    };
    let owner = session::extension_owner()?;
    let (_, role) = session::current_role();
    // Serialised with runners, so a body cannot change between being read and being applied.
    let _snapshot = session::lock_runner(session::LockScope::Transaction)?;
    session::as_owner(owner, || {
        match store::registered(request.project, &version_key)? {
            None => {
                store::insert(&migration, &role)?;
                Ok(REGISTERED)
            }
            Some(existing) if existing.version != request.version => {
                Err(MigrateError::VersionCollision {
                    project: request.project.to_owned(),
                    version: request.version.to_owned(),
                    registered: existing.version,
                })
            }
            Some(existing)
                if existing.name == request.name
                    && existing.up_sql == request.up_sql
                    && existing.down_sql.as_deref() == request.down_sql =>
            {
                Ok(UNCHANGED)
            }
            Some(existing) if existing.applied && existing.checksum != checksum => {
                Err(MigrateError::AppliedBodyChanged {
                    project: request.project.to_owned(),
                    version: request.version.to_owned(),
                    applied: existing.checksum,
                    new: checksum.clone(),
                })
            }
            Some(existing) => {
                store::update(&migration, &role, &changes(&existing, &migration))?;
                Ok(UPDATED)
            }
        }
    })
}

/// What an update changes, for the history.
fn changes(existing: &Registered, new: &NewMigration<'_>) -> String {
    let mut changed = Vec::new();
    if existing.up_sql != new.up_sql {
        changed.push(format!(
            "up body (checksum {} was {})",
            new.checksum, existing.checksum
        ));
    }
    if existing.down_sql.as_deref() != new.down_sql {
        changed.push("down body".to_owned());
    }
    if existing.name != new.name {
        changed.push(format!("name (was \"{}\")", existing.name));
    }
    changed.join(", ")
}

/// A down body without statements (an empty down section or file) means no down body.
fn without_empty_down<'a>(request: Request<'a>) -> Request<'a> {
    match request.down_sql {
        Some(down_sql)
            if matches!(
                parse::statements(down_sql, &request.place(Body::Down)),
                Err(MigrateError::EmptyBody { .. })
            ) =>
        {
            Request {
                down_sql: None,
                ..request
            }
        }
        _ => request,
    }
}

/// `register` from one file in the dbmate layout.
pub fn register_script(
    project: &str,
    version: &str,
    name: &str,
    text: &str,
) -> Result<&'static str, MigrateError> {
    let sections = script::split(text)?;
    let request = Request {
        project,
        version,
        name,
        up_sql: sections.up,
        down_sql: sections.down,
    };
    register("migrate.register_script()", &without_empty_down(request))
}

/// `register` for every migration in a set of files (`files`: path and content), as
/// `register_files` and `import_dir` get them. Returns how many were registered or updated.
pub fn register_files(
    function: &'static str,
    project: &str,
    files: &[(String, String)],
) -> Result<i32, MigrateError> {
    session::refuse_nested(function)?;
    let migrations = files::migrations(files)?;
    let (mut registered, mut updated, mut unchanged) = (0, 0, 0);
    for migration in &migrations {
        let request = Request {
            project,
            version: &migration.version,
            name: &migration.name,
            up_sql: migration.up.as_deref().unwrap_or_default(),
            down_sql: migration.down.as_deref(),
        };
        match register(function, &without_empty_down(request))? {
            REGISTERED => registered += 1,
            UPDATED => updated += 1,
            _ => unchanged += 1,
        }
    }
    notice!(
        "{} in {}: {registered} registered, {updated} updated, {unchanged} unchanged",
        counted(migrations.len(), "migration"),
        counted(migrations.iter().map(|m| m.paths.len()).sum(), "file")
    );
    Ok(registered + updated)
}

/// `import_dir`: the migration files of a directory on the database server, and of its
/// subdirectories one level down (diesel's layout). Reading server files needs the rights of
/// `pg_read_server_files`, as `COPY FROM` a file does.
pub fn import_dir(project: &str, directory: &str) -> Result<i32, MigrateError> {
    const FUNCTION: &str = "migrate.import_dir()";
    session::refuse_nested(FUNCTION)?;
    session::require_server_file_reader()?;
    let root = Path::new(directory);
    if !root.is_absolute() {
        return Err(MigrateError::RelativeDirectory {
            directory: directory.to_owned(),
        });
    }
    let mut files = Vec::new();
    for (name, entry) in read_dir(root)? {
        if entry.is_dir() {
            for (inner_name, inner) in read_dir(&entry)? {
                if inner.is_file() {
                    files.push((format!("{name}/{inner_name}"), read_file(&inner)?));
                }
            }
        } else if entry.is_file() && name.ends_with(".sql") {
            files.push((name, read_file(&entry)?));
        }
    }
    register_files(FUNCTION, project, &files)
}

fn unreadable(path: &Path, error: std::io::Error) -> MigrateError {
    // The system's own text, as PostgreSQL prints it, without Rust's " (os error N)".
    let reason = error.to_string();
    let reason = reason
        .split(" (os error")
        .next()
        .unwrap_or(&reason)
        .to_owned();
    MigrateError::ServerFile {
        path: path.display().to_string(),
        reason,
    }
}

/// The entries of a directory as (file name, path), sorted, hidden ones left out.
fn read_dir(directory: &Path) -> Result<Vec<(String, PathBuf)>, MigrateError> {
    let mut entries = std::fs::read_dir(directory)
        .map_err(|error| unreadable(directory, error))?
        .map(|entry| {
            let entry = entry.map_err(|error| unreadable(directory, error))?;
            Ok((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ))
        })
        .collect::<Result<Vec<_>, MigrateError>>()?;
    entries.retain(|(name, _)| !name.starts_with('.'));
    entries.sort();
    Ok(entries)
}

fn read_file(path: &Path) -> Result<String, MigrateError> {
    let bytes = std::fs::read(path).map_err(|error| unreadable(path, error))?;
    String::from_utf8(bytes).map_err(|_| MigrateError::ServerFile {
        path: path.display().to_string(),
        reason: "not valid UTF-8".to_owned(),
    })
}
