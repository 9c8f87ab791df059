//! Where things are: the project a call works on, and the place inside a migration that a
//! message points to.

use std::fmt;
use std::ops::Deref;

use crate::version::{self, InvalidLabel};

/// The project a call works on when it names none.
pub const DEFAULT_PROJECT: &str = "default";

/// A project name that passed `version::check_project`, and, for a project that fans out over
/// tenant schemas, the one tenant a part of a call works on: each tenant has a history of its
/// own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    name: String,
    tenant: Option<String>,
}

impl Project {
    pub fn new(name: &str) -> Result<Self, InvalidLabel> {
        version::check_project(name)?;
        Ok(Project {
            name: name.to_owned(),
            tenant: None,
        })
    }

    /// The same project in tenant schema `tenant`.
    pub fn in_tenant(&self, tenant: &str) -> Project {
        Project {
            name: self.name.clone(),
            tenant: Some(tenant.to_owned()),
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The `tenant` column of the history: empty outside tenants.
    pub fn tenant_key(&self) -> &str {
        self.tenant().unwrap_or_default()
    }

    /// ` <preposition> project "name"`, or nothing for the default project: messages name the
    /// project only where there is more than one; then ` in tenant "schema"` in a tenant.
    pub fn mention(&self, preposition: &str) -> String {
        let mut mention = if self.name == DEFAULT_PROJECT {
            String::new()
        } else {
            format!(" {preposition} project \"{}\"", self.name)
        };
        if let Some(tenant) = &self.tenant {
            mention.push_str(&format!(" in tenant \"{tenant}\""));
        }
        mention
    }
}

impl Deref for Project {
    type Target = str;

    fn deref(&self) -> &str {
        &self.name
    }
}

/// Which of a migration's two bodies a statement belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    Up,
    Down,
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Body::Up => "up",
            Body::Down => "down",
        })
    }
}

/// How a migration's statements run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lane {
    /// All of a body in one transaction: the caller's (`up()`), or one of its own (`apply()`).
    #[default]
    Transactional,
    /// One statement at a time, each at top level and committed before the next, by
    /// `apply()`: what `CREATE INDEX CONCURRENTLY` and `VACUUM` need.
    NonTransactional,
}

impl Lane {
    /// As the `transactional` column and argument say it.
    pub fn from_transactional(transactional: bool) -> Lane {
        if transactional {
            Lane::Transactional
        } else {
            Lane::NonTransactional
        }
    }

    pub fn is_transactional(self) -> bool {
        self == Lane::Transactional
    }
}

/// A spot inside a body; numbers are 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Whole,
    Line(usize),
    Statement {
        number: usize,
        line: usize,
    },
    /// The deferred constraint checks run at the end of a body.
    DeferredChecks,
    /// What a body leaves in the session, looked at when it has ended.
    End,
}

/// Where in which migration something happened, for DETAIL lines.
#[derive(Clone, Debug)]
pub struct Place {
    pub project: Project,
    pub version: String,
    pub name: String,
    pub body: Body,
    pub position: Position,
}

impl Place {
    /// The whole `body` of migration `version` (`name`) of `project`.
    pub fn whole(project: &Project, version: &str, name: &str, body: Body) -> Place {
        Place {
            project: project.clone(),
            version: version.to_owned(),
            name: name.to_owned(),
            body,
            position: Position::Whole,
        }
    }

    pub fn at(&self, position: Position) -> Place {
        Place {
            position,
            ..self.clone()
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Position::Whole => write!(f, "The {} body", self.body)?,
            Position::Line(line) => write!(f, "Line {line} of the {} body", self.body)?,
            Position::Statement { number, line } => write!(
                f,
                "Statement {number} (line {line}) of the {} body",
                self.body
            )?,
            Position::DeferredChecks => write!(
                f,
                "The deferred constraint checks at the end of the {} body",
                self.body
            )?,
            Position::End => write!(f, "The end of the {} body", self.body)?,
        }
        write!(
            f,
            " of migration \"{}\" ({}){}.",
            self.version,
            self.name,
            self.project.mention("in")
        )
    }
}
