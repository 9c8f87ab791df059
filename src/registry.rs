//! `register` and `register_script`: checking and storing migrations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pgrx::prelude::*;
use sha2::{Digest, Sha256};

use crate::call::{self, Call};
use crate::error::{MigrateError, PartialChange};
use crate::place::{Body, Lane, Place, Project};
use crate::postgres::identity;
use crate::postgres::lock::{self, LockScope};
use crate::store::{self, NewMigration, Registered};
use crate::text::counted;
use crate::{files, gucs, parse, script, version};

/// What registering one migration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    Registered,
    Unchanged,
    Updated,
}

impl Registration {
    /// As `migrate.register()` returns it.
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Registered => "registered",
            Registration::Unchanged => "unchanged",
            Registration::Updated => "updated",
        }
    }
}

/// SHA-256 (hex) of a text: a body's checksum, and each line of `sha256sum`'s listing.
pub fn checksum(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub project: &'a Project,
    pub version: &'a str,
    pub name: &'a str,
    pub up_sql: &'a str,
    pub down_sql: Option<&'a str>,
    pub lane: Lane,
    /// Whether a down body without statements means none, as an empty down section or file
    /// does; `register()` refuses one.
    pub empty_down_is_none: bool,
}

impl Request<'_> {
    fn place(&self, body: Body) -> Place {
        Place::whole(self.project, self.version, self.name, body)
    }

    /// Whether `existing` holds exactly this request's name and bodies.
    fn is_stored_as(&self, existing: &Registered) -> bool {
        existing.name == self.name
            && existing.up_sql == self.up_sql
            && existing.down_sql.as_deref() == self.down_sql
            && existing.lane == self.lane
    }
}

/// A request whose version and name passed the checks, with its version key. Its bodies are
/// checked when they are about to be stored (`store_checked`).
struct Checked<'a> {
    request: Request<'a>,
    version_key: Vec<u8>,
}

/// Checks a request's version and name before anything waits for the runner lock.
fn check(request: Request<'_>) -> Result<Checked<'_>, MigrateError> {
    version::check_version(request.version)?;
    version::check_name(request.name)?;
    Ok(Checked {
        request,
        version_key: version::sort_key(request.version),
    })
}

/// Refuses a body above `migrate.max_body_size` before parsing it, then parses it.
fn check_body(sql: &str, place: Place, lane: Lane) -> Result<(), MigrateError> {
    if let Some(limit_bytes) = gucs::max_body_bytes().filter(|&limit| sql.len() > limit) {
        return Err(MigrateError::BodyTooLarge {
            place,
            bytes: sql.len(),
            limit_bytes,
        });
    }
    parse::statements(sql, &place, lane).map(drop)
}

/// The call of a registering function: under the runner lock, so that a body cannot change
/// between being read and being applied.
fn registering(function: &'static str, project: &Project) -> Result<Call, MigrateError> {
    Call::locked(function, project.clone(), LockScope::Transaction)
}

/// Stores `checked`, given what is registered under its version key: identical is a no-op, a
/// changed pending one is replaced, a changed up body of an applied one is refused. Runs as
/// the owner (inside `Call::as_owner`).
fn store_checked(
    call: &Call,
    checked: &Checked<'_>,
    existing: Option<Registered>,
) -> Result<Registration, MigrateError> {
    let request = blank_down_as_none(checked.request);
    if let Some(existing) = &existing {
        if existing.version != request.version {
            return Err(MigrateError::VersionCollision {
                project: request.project.clone(),
                version: request.version.to_owned(),
                registered: existing.version.clone(),
            });
        }
        // What is stored passed the checks when it was stored: an application that
        // registers everything it ships at every start does not have it parsed again.
        if request.is_stored_as(existing) {
            return Ok(Registration::Unchanged);
        }
        if existing.partial {
            keeps_what_ran(&request, existing)?;
        }
    }
    check_body(request.up_sql, request.place(Body::Up), request.lane)?;
    // A down body without statements (an empty down file, a section of comments) means no
    // down body where the request says so; the parse that finds it so is the check.
    let request = match request.down_sql {
        Some(down_sql) => match check_body(down_sql, request.place(Body::Down), request.lane) {
            Err(MigrateError::EmptyBody { .. }) if request.empty_down_is_none => Request {
                down_sql: None,
                ..request
            },
            checked => checked.map(|()| request)?,
        },
        None => request,
    };
    let checksum = checksum(request.up_sql);
    let migration = NewMigration {
        project: request.project,
        version: request.version,
        name: request.name,
        up_sql: request.up_sql,
        down_sql: request.down_sql,
        checksum: &checksum,
        version_key: &checked.version_key,
        lane: request.lane,
    };
    match existing {
        None => {
            store::insert(&migration, &call.role)?;
            Ok(Registration::Registered)
        }
        // An empty down file, stored as no down body.
        Some(existing) if request.is_stored_as(&existing) => Ok(Registration::Unchanged),
        Some(existing) if existing.applied && existing.checksum != checksum => {
            Err(MigrateError::AppliedBodyChanged {
                project: request.project.clone(),
                version: request.version.to_owned(),
                applied: existing.checksum,
                new: checksum,
            })
        }
        Some(existing) => {
            store::update(&migration, &call.role, &changes(&existing, &migration))?;
            Ok(Registration::Updated)
        }
    }
}

/// Refuses a change to a partly applied non-transactional migration unless the statements of
/// its up body that started, which may have committed, stay as they were: the next run resumes
/// after them. Nothing may change while another session runs them.
fn keeps_what_ran(request: &Request<'_>, existing: &Registered) -> Result<(), MigrateError> {
    let changed = |why: PartialChange| MigrateError::PartlyAppliedChanged {
        project: request.project.clone(),
        version: request.version.to_owned(),
        why,
    };
    if lock::lane_holder()?.is_some() {
        return Err(changed(PartialChange::Running));
    }
    // A revert under way, or a change of lane, keeps nothing of the order that ran.
    if existing.applied || request.lane != Lane::NonTransactional {
        return Err(changed(PartialChange::Committed));
    }
    let place = request.place(Body::Up);
    let texts = |sql: &str| -> Result<Vec<String>, MigrateError> {
        Ok(parse::statements(sql, &place, Lane::NonTransactional)?
            .iter()
            .map(|statement| sql[statement.start..statement.end].trim().to_owned())
            .collect())
    };
    let (before, after) = (texts(&existing.up_sql)?, texts(request.up_sql)?);
    let progress = store::progress(request.project, &existing.version)?;
    match progress
        .ran
        .iter()
        .chain(&progress.started)
        .find(|&&number| before.get(number - 1) != after.get(number - 1))
    {
        Some(&number) => Err(changed(PartialChange::Statement(number))),
        None => Ok(()),
    }
}

/// Stores a migration, or finds it already there (see `store_checked`).
pub fn register(
    function: &'static str,
    request: Request<'_>,
) -> Result<Registration, MigrateError> {
    let checked = check(request)?;
    let call = registering(function, request.project)?;
    call.as_owner(|| {
        let existing = store::registered(request.project, &checked.version_key)?;
        store_checked(&call, &checked, existing)
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
    if existing.lane != new.lane {
        changed.push(if new.lane.is_transactional() {
            "lane (was non-transactional)".to_owned()
        } else {
            "lane (was transactional)".to_owned()
        });
    }
    changed.join(", ")
}

/// A blank down section (dbmate's, of a migration without a down) means no down body, known
/// without parsing it: an unchanged migration is then found unchanged before any parsing.
fn blank_down_as_none(request: Request<'_>) -> Request<'_> {
    match request.down_sql {
        Some(down_sql) if request.empty_down_is_none && down_sql.trim().is_empty() => Request {
            down_sql: None,
            ..request
        },
        _ => request,
    }
}

/// Stores a repeatable migration, or finds it already there: `name` names it (as a version
/// names a versioned one), and its body runs again whenever it differs from the one last run.
pub fn register_repeatable(
    function: &'static str,
    project: &Project,
    name: &str,
    body: &str,
) -> Result<Registration, MigrateError> {
    version::check_name(name)?;
    let call = registering(function, project)?;
    call.as_owner(|| store_repeatable(&call, name, body))
}

/// Stores the repeatable migration `name`, as the owner (inside `Call::as_owner`).
fn store_repeatable(call: &Call, name: &str, body: &str) -> Result<Registration, MigrateError> {
    let existing = store::registered_repeatable(&call.project, name)?;
    if existing.as_ref().is_some_and(|(stored, _)| stored == body) {
        return Ok(Registration::Unchanged);
    }
    let place = Place::whole(&call.project, name, "repeatable", Body::Up);
    check_body(body, place, Lane::Transactional)?;
    let checksum = checksum(body);
    store::store_repeatable(
        &call.project,
        name,
        body,
        &checksum,
        &call.role,
        existing.is_some(),
    )?;
    Ok(if existing.is_some() {
        Registration::Updated
    } else {
        Registration::Registered
    })
}

/// `register` from one file in the dbmate layout.
pub fn register_script(
    project: &Project,
    version: &str,
    name: &str,
    text: &str,
) -> Result<Registration, MigrateError> {
    let sections = script::split(text)?;
    let request = Request {
        project,
        version,
        name,
        up_sql: sections.up,
        down_sql: sections.down,
        lane: sections.lane,
        empty_down_is_none: true,
    };
    register("migrate.register_script()", request)
}

/// `register` for every migration in a set of files (`files`: path and content), as
/// `register_files` and `import_dir` get them. Returns how many were registered or updated.
pub fn register_files(
    function: &'static str,
    project: &Project,
    files: &[(String, String)],
) -> Result<i32, MigrateError> {
    let files::Placed {
        migrations,
        repeatables,
    } = files::place_all(files)?;
    let checked = migrations
        .iter()
        .map(|migration| {
            check(Request {
                project,
                version: &migration.version,
                name: &migration.name,
                up_sql: migration.up.as_deref().unwrap_or_default(),
                down_sql: migration.down.as_deref(),
                lane: migration.lane,
                empty_down_is_none: true,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Two files whose versions are equal in natural order (1 and 01) collide here already.
    let mut keys = HashMap::new();
    for item in &checked {
        if let Some(first) = keys.insert(&item.version_key, item.request.version) {
            return Err(MigrateError::VersionCollision {
                project: project.clone(),
                version: item.request.version.to_owned(),
                registered: first.to_owned(),
            });
        }
    }
    let set = store::FileSet {
        digest: listing_digest(listed(files).iter().map(String::as_str)),
        migrations: counted_i32(migrations.len()),
        repeatables: counted_i32(repeatables.len()),
        files: counted_i32(
            migrations.iter().map(|m| m.paths.len()).sum::<usize>() + repeatables.len(),
        ),
    };
    // One lock, one owner switch and one read of what is registered, for all of them.
    let call = registering(function, project)?;
    let (mut registered, mut updated, mut unchanged) = (0, 0, 0);
    call.as_owner(|| {
        let mut existing = store::registered_in(project)?;
        let mut count = |registration| match registration {
            Registration::Registered => registered += 1,
            Registration::Updated => updated += 1,
            Registration::Unchanged => unchanged += 1,
        };
        for item in &checked {
            count(store_checked(
                &call,
                item,
                existing.remove(&item.version_key),
            )?);
        }
        for repeatable in &repeatables {
            version::check_name(&repeatable.name)?;
            count(store_repeatable(&call, &repeatable.name, &repeatable.body)?);
        }
        // After the writes, which forget the set they replace.
        store::remember_file_set(project, &set)
    })?;
    report(&set, registered, updated, unchanged);
    Ok(registered + updated)
}

/// The digest of a `sha256sum` listing: the SHA-256 (hex) of its lines in byte order, each
/// with its newline. Sorted, so that a client may list the files in any order.
fn listing_digest<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut lines: Vec<&str> = lines.filter(|line| !line.is_empty()).collect();
    lines.sort_unstable();
    let mut hasher = Sha256::new();
    for line in lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

/// The lines `sha256sum` prints for `files` (path and content): the content's SHA-256 (hex),
/// two spaces and the path, as the loader's client computes them.
fn listed(files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        .map(|(path, content)| format!("{}  {path}", checksum(content)))
        .collect()
}

fn counted_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The notice of a `register_files()` call, or of `files_unchanged()` for the files it found
/// unchanged.
fn report(set: &store::FileSet, registered: i32, updated: i32, unchanged: i32) {
    let repeatable = if set.repeatables == 0 {
        String::new()
    } else {
        format!(" and {} repeatable", set.repeatables)
    };
    notice!(
        "{}{repeatable} in {}: {registered} registered, {updated} updated, {unchanged} unchanged",
        counted(set.migrations as usize, "migration"),
        counted(set.files as usize, "file")
    );
}

/// Whether `register_files()` last registered, for `project`, exactly the files whose
/// `sha256sum` listing is `sha256sums` (in any order), with nothing registered
/// changed since: registering them again would change nothing. A client that computes the
/// listing ships the files only when it is false.
pub fn files_unchanged(project: &Project, sha256sums: &str) -> Result<bool, MigrateError> {
    let call = Call::reading(project.clone());
    let Some(set) = call.as_owner(|| store::file_set(project))? else {
        return Ok(false);
    };
    if set.digest != listing_digest(sha256sums.split('\n')) {
        return Ok(false);
    }
    report(&set, 0, 0, set.migrations + set.repeatables);
    Ok(true)
}

/// `import_dir`: the migration files of a directory on the database server, and of its
/// subdirectories one level down (diesel's layout). Reading server files needs the rights of
/// `pg_read_server_files`, as `COPY FROM` a file does.
pub fn import_dir(project: &Project, directory: &str) -> Result<i32, MigrateError> {
    const FUNCTION: &str = "migrate.import_dir()";
    call::refuse_nested(FUNCTION)?;
    if !identity::reads_server_files() {
        return Err(MigrateError::NotServerFileReader);
    }
    let root = Path::new(directory);
    if !root.is_absolute() {
        return Err(MigrateError::RelativeDirectory {
            directory: directory.to_owned(),
        });
    }
    let mut files = Vec::new();
    for (name, entry) in read_dir(root)? {
        // A large tree stays cancellable.
        pgrx::check_for_interrupts!();
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
