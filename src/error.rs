//! Every error the extension raises, with its SQLSTATE, message, DETAIL and HINT in one place.

use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::prelude::*;

use crate::place::{Body, Place, Project};
use crate::postgres::backend;
use crate::text::{quoted_list, shortened};
use crate::version::{InvalidLabel, MAX_NAME_LEN, MAX_PROJECT_LEN, MAX_VERSION_LEN};

/// The parts of an error as the client sees them: of one the server raised and we caught (pgrx
/// keeps these), or of one of ours.
#[derive(Debug)]
pub struct ErrorParts {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ErrorParts {
    fn new(code: PgSqlErrorCode, message: String) -> Self {
        ErrorParts {
            code,
            message,
            detail: None,
            hint: None,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The five-character SQLSTATE.
    pub fn sqlstate(&self) -> String {
        backend::sqlstate(self.code)
    }

    /// SQLSTATE, message and DETAIL on lines of their own, for the history and for rehearse.
    pub fn summary(&self) -> String {
        let mut summary = format!("SQLSTATE {}: {}", self.sqlstate(), self.message);
        if let Some(detail) = &self.detail {
            summary.push('\n');
            summary.push_str(detail);
        }
        summary
    }

    /// Appends where in which migration it happened to the DETAIL.
    fn at(mut self, place: Place) -> Self {
        self.detail = Some(match self.detail {
            Some(detail) => format!("{detail}\n{place}"),
            None => place.to_string(),
        });
        self
    }
}

impl From<&CaughtError> for ErrorParts {
    fn from(caught: &CaughtError) -> Self {
        let (CaughtError::PostgresError(report)
        | CaughtError::ErrorReport(report)
        | CaughtError::RustPanic {
            ereport: report, ..
        }) = caught;
        ErrorParts {
            code: report.sql_error_code(),
            message: report.message().to_owned(),
            detail: report.detail().map(str::to_owned),
            hint: report.hint().map(str::to_owned),
        }
    }
}

/// Why a partly applied non-transactional migration cannot change as asked.
#[derive(Debug)]
pub enum PartialChange {
    /// Another session runs its statements now.
    Running,
    /// This statement started, and may have committed.
    Statement(usize),
    /// It is being reverted, or would change lane.
    Committed,
}

#[derive(Debug)]
pub enum MigrateError {
    NullArgument {
        argument: &'static str,
    },
    InvalidVersion {
        version: String,
    },
    InvalidProject {
        project: String,
    },
    InvalidName {
        name: String,
    },
    NegativeSteps {
        steps: i32,
    },
    EmptyBody {
        place: Place,
    },
    BodyTooLarge {
        place: Place,
        bytes: usize,
        limit_bytes: usize,
    },
    MetaCommand {
        command: String,
        place: Place,
    },
    RefusedStatement {
        statement: &'static str,
        hint: &'static str,
        /// Refused because the migration is transactional: another would take it.
        in_transaction: bool,
        place: Place,
    },
    /// A statement refused when a running body reaches it through dynamic SQL; the runner adds
    /// the place.
    RefusedWhileRunning {
        statement: &'static str,
        hint: &'static str,
    },
    LeftBehind {
        left: Vec<String>,
        /// Whether some of it was session-level advisory locks, which the runner released.
        locks_released: bool,
        place: Place,
    },
    ScriptLayout {
        problem: String,
    },
    ImportLayout {
        problem: String,
    },
    NotServerFileReader,
    UnknownTool {
        tool: String,
        known: String,
    },
    NoToolHistory {
        tool: &'static str,
        table: &'static str,
    },
    DirtyToolHistory {
        tool: &'static str,
    },
    FileListLengths {
        paths: usize,
        contents: usize,
    },
    RelativeDirectory {
        directory: String,
    },
    ServerFile {
        path: String,
        reason: String,
    },
    VersionCollision {
        project: Project,
        version: String,
        registered: String,
    },
    AppliedBodyChanged {
        project: Project,
        version: String,
        applied: String,
        new: String,
    },
    UnknownVersion {
        project: Project,
        version: String,
    },
    OutOfOrder {
        project: Project,
        versions: Vec<String>,
        highest: String,
    },
    MissingDownBody {
        project: Project,
        versions: Vec<String>,
    },
    /// `up()`, `down()` (or `apply()` inside a transaction block) reached non-transactional
    /// migrations.
    NonTransactional {
        function: &'static str,
        body: Body,
        project: Project,
        versions: Vec<String>,
    },
    /// A changed registration of a non-transactional migration some statements of which have
    /// run.
    PartlyAppliedChanged {
        project: Project,
        version: String,
        why: PartialChange,
    },
    /// A runner that cannot wait without holding a snapshot met one running non-transactional
    /// statements.
    LaneBusy {
        function: &'static str,
        holder: Option<i32>,
    },
    /// A non-transactional or repeatable migration, for tables of a release before them.
    ExtensionNotUpdated,
    IsolationLevel {
        function: &'static str,
        level: &'static str,
    },
    Nested {
        function: &'static str,
    },
    UnknownRegistrant {
        role: String,
        place: Place,
    },
    /// The server's own error, kept as it was.
    Server(ErrorParts),
    RunnerBusy {
        waited_ms: i32,
        /// The setting that bounded the wait.
        bound: &'static str,
        holder: Option<i32>,
    },
    LockTimeout {
        error: ErrorParts,
        place: Place,
        attempts: i32,
        timeout_ms: i32,
    },
    /// A body failed: the server's own error, kept as it was, with the place added.
    BodyFailed {
        error: ErrorParts,
        place: Place,
    },
    /// A body of `up()` used an enum value an earlier migration of the same call added.
    EnumValueNotCommitted {
        error: ErrorParts,
        place: Place,
    },
    /// SPI refused to run a statement of a body.
    StatementNotRun {
        error: pgrx::spi::Error,
        place: Place,
    },
    Spi(pgrx::spi::Error),
}

const HINT_ENUM_VALUE: &str = "A value added to an enum can be used only after the transaction that added it commits: apply with CALL migrate.apply() (outside a transaction block), which commits after each migration.";

impl From<pgrx::spi::Error> for MigrateError {
    fn from(error: pgrx::spi::Error) -> Self {
        MigrateError::Spi(error)
    }
}

fn refused(statement: &str, hint: &str, inside: &str) -> ErrorParts {
    ErrorParts::new(
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        format!("{statement} cannot run inside {inside}"),
    )
    .hint(hint)
}

impl From<InvalidLabel> for MigrateError {
    fn from(invalid: InvalidLabel) -> Self {
        match invalid {
            InvalidLabel::Version(version) => MigrateError::InvalidVersion { version },
            InvalidLabel::Project(project) => MigrateError::InvalidProject { project },
            InvalidLabel::Name(name) => MigrateError::InvalidName { name },
        }
    }
}

impl From<ErrorParts> for ErrorReport {
    fn from(parts: ErrorParts) -> Self {
        let report = ErrorReport::new(parts.code, parts.message, "migrate");
        let report = match parts.detail {
            Some(detail) => report.set_detail(detail),
            None => report,
        };
        match parts.hint {
            Some(hint) => report.set_hint(hint),
            None => report,
        }
    }
}

impl From<MigrateError> for ErrorReport {
    fn from(error: MigrateError) -> Self {
        ErrorParts::from(error).into()
    }
}

impl From<MigrateError> for ErrorParts {
    fn from(error: MigrateError) -> Self {
        use MigrateError::*;
        use PgSqlErrorCode::*;
        let report = ErrorParts::new;
        match error {
            NullArgument { argument } => report(ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("{argument} must not be null")),
            InvalidVersion { version } => report(ERRCODE_INVALID_PARAMETER_VALUE, format!("invalid migration version \"{}\"", shortened(&version)))
                .detail(format!(
                    "A version has 1 to {MAX_VERSION_LEN} letters, digits, \".\", \"_\" and \"-\", and starts with a letter or digit."
                ))
                .hint("Timestamps such as 20260115120000 or numbers such as 0001 work well."),
            InvalidProject { project } => report(ERRCODE_INVALID_PARAMETER_VALUE, format!("invalid project name \"{}\"", shortened(&project)))
                .detail(format!(
                    "A project name has 1 to {MAX_PROJECT_LEN} letters, digits, \".\", \"_\" and \"-\", and starts with a letter or digit."
                )),
            InvalidName { name } => report(ERRCODE_INVALID_PARAMETER_VALUE, format!("invalid migration name \"{}\"", shortened(&name)))
                .detail(format!("A migration name is not blank and has at most {MAX_NAME_LEN} characters.")),
            NegativeSteps { steps } => {
                report(ERRCODE_INVALID_PARAMETER_VALUE, format!("steps must not be negative, got {steps}"))
            }
            BodyTooLarge { place, bytes, limit_bytes } => report(
                ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "the {} body of migration \"{}\" has {bytes} bytes, more than migrate.max_body_size ({} kB)",
                    place.body,
                    shortened(&place.version),
                    limit_bytes / 1024
                ),
            )
            .detail("Registering and applying a body takes about twelve times its size in backend memory.")
            .hint("Split it into several migrations, load data with COPY from a server file, or raise migrate.max_body_size."),
            EmptyBody { place } => report(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!("the {} body of migration \"{}\" has no SQL statement", place.body, place.version),
            )
            .detail(place.to_string())
            .hint(match place.body {
                Body::Up => "Give the migration at least one statement.",
                Body::Down => "Pass NULL as the down body of a migration that has none.",
            }),
            MetaCommand { command, place } => {
                report(ERRCODE_SYNTAX_ERROR, format!("psql meta-command \"{command}\" is not SQL"))
                    .detail(place.to_string())
                    .hint("Bodies run as SQL inside the server, where psql is not present; remove psql meta-commands.")
            }
            RefusedStatement { statement, hint, in_transaction, place } => {
                let inside = if in_transaction { "a transactional migration" } else { "a migration" };
                refused(statement, hint, inside).detail(place.to_string())
            }
            RefusedWhileRunning { statement, hint } => refused(statement, hint, "a migration"),
            LeftBehind { left, locks_released, place } => {
                let released = if locks_released {
                    "\nThe session-level advisory locks it took have been released."
                } else {
                    ""
                };
                report(
                    ERRCODE_FEATURE_NOT_SUPPORTED,
                    format!(
                        "migration \"{}\" ({}) leaves {} behind in the session",
                        place.version,
                        place.name,
                        left.join(", ")
                    ),
                )
                .detail(format!("{place}{released}"))
                .hint("A body runs as its registrant, but what it leaves in the session is used later as whoever applies it: close the cursors it opens, drop its temporary objects (ON COMMIT DROP is too late), and take advisory locks with pg_advisory_xact_lock().")
            }
            ScriptLayout { problem } => report(ERRCODE_INVALID_PARAMETER_VALUE, format!("invalid migration script: {problem}"))
                .hint("A script has a \"-- migrate:up\" line, the up SQL, and optionally a \"-- migrate:down\" line and the down SQL."),
            ImportLayout { problem } => report(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!("cannot place migration files: {problem}"),
            )
            .hint("Name files <version>_<name>.sql (dbmate, goose), <version>_<name>.up.sql and .down.sql (golang-migrate, sqlx), <version>_<name>/up.sql and down.sql (diesel), or V<version>__<name>.sql, U<version>__<name>.sql and R__<name>.sql (Flyway)."),
            UnknownTool { tool, known } => report(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!("unknown migration tool \"{tool}\""),
            )
            .hint(format!("Known tools: {known}.")),
            NoToolHistory { tool, table } => report(
                ERRCODE_UNDEFINED_TABLE,
                format!("no {tool} history: table \"{table}\" not found"),
            )
            .hint("The table is looked up on the search_path, as the tool does; set search_path to its schema."),
            DirtyToolHistory { tool } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("the {tool} history is dirty"),
            )
            .detail("A migration failed half-way under that tool; what it left is unknown.")
            .hint("Repair the database and clear the dirty flag with the tool first."),
            NotServerFileReader => report(
                ERRCODE_INSUFFICIENT_PRIVILEGE,
                "permission denied to read files on the database server".to_owned(),
            )
            .hint("Only roles with the rights of pg_read_server_files may import a server directory; clients can send files with migrate.register_files()."),
            FileListLengths { paths, contents } => report(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{paths} paths but {contents} contents"),
            )
            .detail("Each path needs the content of its file, at the same position."),
            RelativeDirectory { directory } => report(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!("directory \"{directory}\" is not an absolute path"),
            ),
            ServerFile { path, reason } => report(
                ERRCODE_UNDEFINED_FILE,
                format!("could not read \"{path}\": {reason}"),
            ),
            VersionCollision { project, version, registered } => report(
                ERRCODE_DUPLICATE_OBJECT,
                format!("version \"{version}\" collides with registered version \"{registered}\"{}", project.mention("in")),
            )
            .detail("Versions compare digit runs as numbers, so both versions have the same place in the order.")
            .hint(format!("Register the migration as \"{registered}\", or give it a different version.")),
            AppliedBodyChanged { project, version, applied, new } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("cannot change the up body of applied migration \"{version}\"{}", project.mention("in")),
            )
            .detail(format!("Applied checksum {applied}, new checksum {new}."))
            .hint("Register the change as a new migration, or revert this one with migrate.down() first."),
            UnknownVersion { project, version } => report(
                ERRCODE_UNDEFINED_OBJECT,
                format!("migration \"{}\" is not registered{}", shortened(&version), project.mention("in")),
            )
            .hint("migrate.status() lists the registered migrations."),
            OutOfOrder { project, versions, highest } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("pending migrations are older than applied migration \"{highest}\"{}", project.mention("in")),
            )
            .detail(format!("Out of order: {}.", quoted_list(&versions)))
            .hint("Give them versions above the applied ones, or SET migrate.allow_out_of_order = on to apply them anyway."),
            MissingDownBody { project, versions } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("cannot revert migrations without a down body{}", project.mention("in")),
            )
            .detail(format!("No down body: {}. Nothing was reverted.", quoted_list(&versions)))
            .hint("Register them again with a down body, or revert fewer migrations."),
            NonTransactional { function, body, project, versions } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "{function} cannot {} non-transactional migrations in one transaction{}",
                    match body { Body::Up => "apply", Body::Down => "revert" },
                    project.mention("of")
                ),
            )
            .detail(format!(
                "Non-transactional: {}. Their statements run one at a time, each committed before the next. Nothing was {}.",
                quoted_list(&versions),
                match body { Body::Up => "applied", Body::Down => "reverted" }
            ))
            .hint(match body {
                Body::Up => "Apply them with CALL migrate.apply(), outside a transaction block.",
                Body::Down => "Revert them with CALL migrate.revert(), outside a transaction block.",
            }),
            PartlyAppliedChanged { project, version, why } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("cannot change migration \"{version}\"{}: some of its statements have run", project.mention("in")),
            )
            .detail(match why {
                PartialChange::Running => "Another session is running its statements now.".to_owned(),
                PartialChange::Statement(number) => format!("Statement {number} has run, and the change alters it; statements that have not run may change."),
                PartialChange::Committed => "It is non-transactional, and statements of the body being run have been committed.".to_owned(),
            })
            .hint("Keep the statements that ran as they are, or finish the migration with CALL migrate.apply() and register the change as a new migration."),
            LaneBusy { function, holder } => report(
                ERRCODE_OBJECT_IN_USE,
                match holder {
                    Some(pid) => format!("another session (process {pid}) is applying a non-transactional migration"),
                    None => "another session is applying a non-transactional migration".to_owned(),
                },
            )
            .detail(format!("Waiting inside {function} would hold a snapshot, and CREATE INDEX CONCURRENTLY waits for every older snapshot."))
            .hint("Use CALL migrate.apply(), which waits without one, or try again when it has finished."),
            ExtensionNotUpdated => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "the migrations extension of this database is not updated to 0.3.0".to_owned(),
            )
            .detail("Non-transactional and repeatable migrations need the tables 0.3.0 added; the library is 0.3.0 already.")
            .hint("Run ALTER EXTENSION migrations UPDATE."),
            IsolationLevel { function, level } => report(
                ERRCODE_INVALID_TRANSACTION_STATE,
                format!("{function} must run in a READ COMMITTED transaction"),
            )
            .detail(format!(
                "The transaction is {level}: its snapshot could not see what a runner it waited for has applied."
            ))
            .hint("Call it outside an explicit transaction block, or begin the transaction with ISOLATION LEVEL READ COMMITTED."),
            Nested { function } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("{function} cannot be called from a migration body"),
            )
            .hint("Migration bodies must not register, apply or revert migrations."),
            UnknownRegistrant { role, place } => report(
                ERRCODE_UNDEFINED_OBJECT,
                format!("role \"{role}\" that registered migration \"{}\" does not exist", place.version),
            )
            .detail(place.to_string())
            .hint("Bodies run as the role that registered them; register the migration again as an existing role."),
            Server(error) => error,
            RunnerBusy { waited_ms, bound, holder } => report(
                ERRCODE_LOCK_NOT_AVAILABLE,
                match holder {
                    Some(pid) => format!("another migration runner (process {pid}) holds the runner lock"),
                    None => "another migration runner holds the runner lock".to_owned(),
                },
            )
            .detail(format!("Waited {waited_ms} ms ({bound})."))
            .hint(format!("Try again when it has finished, or raise {bound}.")),
            LockTimeout { error, place, attempts, timeout_ms } => report(
                ERRCODE_LOCK_NOT_AVAILABLE,
                format!(
                    "migration \"{}\" ({}) could not get a lock within {timeout_ms} ms in {attempts} {}",
                    place.version,
                    place.name,
                    if attempts == 1 { "attempt" } else { "attempts" }
                ),
            )
            .detail(format!("{}.\n{place}", error.message))
            .hint("Another session holds a conflicting lock (see pg_locks); try again later, or raise migrate.lock_timeout or migrate.lock_retries."),
            BodyFailed { error, place } => error.at(place),
            EnumValueNotCommitted { error, place } => ErrorParts { hint: Some(HINT_ENUM_VALUE.to_owned()), ..error }.at(place),
            StatementNotRun { error, place } => report(ERRCODE_FEATURE_NOT_SUPPORTED, error.to_string()).at(place),
            Spi(error) => report(ERRCODE_INTERNAL_ERROR, format!("migrate bookkeeping failed: {error}")),
        }
    }
}
