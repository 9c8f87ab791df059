//! `register` and `register_script`: checking and storing migrations.

use sha2::{Digest, Sha256};

use crate::error::{Body, MigrateError, Place, Position};
use crate::store::{self, NewMigration, Registered};
use crate::{parse, script, session, version};

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

/// `register` from one file in the dbmate layout. A down section without statements means the
/// migration has no down body.
pub fn register_script(
    project: &str,
    version: &str,
    name: &str,
    text: &str,
) -> Result<&'static str, MigrateError> {
    let sections = script::split(text)?;
    let mut request = Request {
        project,
        version,
        name,
        up_sql: sections.up,
        down_sql: sections.down,
    };
    if let Some(down_sql) = sections.down
        && let Err(MigrateError::EmptyBody { .. }) =
            parse::statements(down_sql, &request.place(Body::Down))
    {
        request.down_sql = None;
    }
    register("migrate.register_script()", &request)
}
