//! Every error the extension raises, with its SQLSTATE, message, DETAIL and HINT in one place.

use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::prelude::*;

use crate::place::{Body, Place, Project};
use crate::postgres::backend;
use crate::text::{counted, quoted_list, shortened};
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
    /// The tables are an earlier release's; `needs` says what needs this one's.
    ExtensionNotUpdated {
        needs: &'static str,
    },
    /// `set_tenants` with neither or both of a list and a query.
    TenantSetArguments,
    NegativeCanary {
        canary: i32,
    },
    /// Tenant schemas of a project's set that do not exist.
    MissingTenants {
        project: Project,
        schemas: Vec<String>,
    },
    /// The tenant query of a project returned a NULL schema name.
    NullTenant {
        project: Project,
    },
    /// The role that configured a project's tenant set, whose query runs as it, is gone.
    UnknownConfigurer {
        project: Project,
        role: String,
    },
    /// A project that has history outside tenant schemas cannot fan out (or stop fanning out)
    /// without losing track of what is applied where.
    TenantHistory {
        project: Project,
        /// Whether the history is in tenants (unsetting) or outside them (setting).
        in_tenants: bool,
    },
    /// What does not fan out over tenants yet.
    NotInTenants {
        function: &'static str,
        project: Project,
        what: &'static str,
    },
    /// Migrations failed in some tenants of a project under `apply()`; the others were applied.
    TenantsFailed {
        project: Project,
        failures: Vec<(String, ErrorParts)>,
        tenants: usize,
        /// Tenants not started because a canary tenant failed.
        not_started: usize,
    },
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
    /// A schema `diff()` may not compare.
    DiffScope {
        schema: String,
    },
    /// The desired schema's SQL failed.
    DesiredSchema {
        error: ErrorParts,
    },
    /// What no statement takes the catalog to in place.
    DiffImpossible {
        changes: Vec<String>,
    },
    /// What the desired schema would lose, refused unless allowed.
    DiffDestructive {
        steps: Vec<String>,
    },
    /// Migrations are pending, so the catalog is not the one a declared migration runs on.
    DeclarePending {
        project: Project,
        pending: Vec<String>,
    },
    NothingToDeclare {
        version: String,
    },
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
            ExtensionNotUpdated { needs } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("the migrations extension of this database is not updated to {}", env!("CARGO_PKG_VERSION")),
            )
            .detail(format!("{needs} the tables of a later release; the library is {} already.", env!("CARGO_PKG_VERSION")))
            .hint("Run ALTER EXTENSION migrations UPDATE."),
            TenantSetArguments => report(
                ERRCODE_INVALID_PARAMETER_VALUE,
                "exactly one of schemas and query must be given".to_owned(),
            )
            .hint("Give the tenant schemas as a list (schemas => ARRAY['tenant_a', 'tenant_b']) or as a query whose first column names them (query => 'SELECT ...')."),
            NegativeCanary { canary } => report(ERRCODE_INVALID_PARAMETER_VALUE, format!("canary must not be negative, got {canary}")),
            MissingTenants { project, schemas } => report(
                ERRCODE_INVALID_SCHEMA_NAME,
                format!("tenant {} {}{} {} not exist", if schemas.len() == 1 { "schema" } else { "schemas" },
                    quoted_list(&schemas), project.mention("of"), if schemas.len() == 1 { "does" } else { "do" }),
            )
            .detail("Nothing was done.")
            .hint("Create the schemas, or change the tenant set with migrate.set_tenants()."),
            NullTenant { project } => report(
                ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("the tenant query{} returned a null schema name", project.mention("of")),
            )
            .detail("Nothing was done."),
            UnknownConfigurer { project, role } => report(
                ERRCODE_UNDEFINED_OBJECT,
                format!("role \"{role}\" that set the tenants{} does not exist", project.mention("of")),
            )
            .hint("The tenant query runs as the role that set it; call migrate.set_tenants() again as an existing role."),
            TenantHistory { project, in_tenants: false } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("project \"{}\" has migrations applied outside tenant schemas", &*project),
            )
            .detail("Its history says what is applied in one schema; spread over tenants, it would say nothing about any of them.")
            .hint("Give the tenant migrations a project of their own, or revert the applied ones first."),
            TenantHistory { project, in_tenants: true } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("project \"{}\" has migrations applied in tenant schemas", &*project),
            )
            .detail("Without its tenant set, nothing would say what is applied in each tenant.")
            .hint("Change the set with migrate.set_tenants() instead, or revert the applied migrations first."),
            NotInTenants { function, project, what } => report(
                ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("{function} cannot {what} in tenant schemas"),
            )
            .detail(format!("Project \"{}\" fans out over tenant schemas (see migrate.tenants()).", &*project))
            .hint("status() shows each tenant's state; up(), apply(), down(), revert() and baseline() work in every tenant."),
            TenantsFailed { project, failures, tenants, not_started } => {
                let code = failures.first().map_or(ERRCODE_INTERNAL_ERROR, |(_, error)| error.code);
                // As quoted_list does: a thousand failed tenants keep the message readable.
                const SHOWN: usize = 20;
                let mut detail: Vec<String> = failures
                    .iter()
                    .take(SHOWN)
                    .map(|(tenant, error)| {
                        let mut line = format!("Tenant \"{tenant}\": {}", error.message);
                        if let Some(more) = &error.detail {
                            line.push('\n');
                            line.push_str(more);
                        }
                        line
                    })
                    .collect();
                if failures.len() > SHOWN {
                    detail.push(format!("And {} more: status() lists them.", counted(failures.len() - SHOWN, "tenant")));
                }
                if not_started > 0 {
                    detail.push(format!(
                        "A canary tenant failed: {} not started.",
                        counted(not_started, "other tenant")
                    ));
                }
                report(
                    code,
                    format!("migrations failed in {} of {}{}", failures.len(), counted(tenants, "tenant"), project.mention("of")),
                )
                .detail(detail.join("\n"))
                .hint(format!(
                    "{} status() shows each tenant's state; once the cause is fixed, CALL migrate.apply() again: each tenant resumes where it stopped.",
                    if not_started > 0 {
                        "Nothing ran in the tenants after the canaries."
                    } else {
                        "The other tenants' migrations were applied and committed."
                    }
                ))
            }
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
            DiffScope { schema } => report(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!("schema \"{}\" cannot be compared with a desired schema", shortened(&schema)),
            )
            .detail("diff() and declare() compare user schemas: not migrate, pg_catalog, information_schema or pg_*."),
            DesiredSchema { error } => ErrorParts {
                detail: Some(match error.detail {
                    Some(detail) => format!("{detail}\nIn the desired schema's SQL."),
                    None => "In the desired schema's SQL.".to_owned(),
                }),
                ..error
            },
            DiffImpossible { changes } => report(
                ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("the desired schema cannot be reached in place: {}", counted(changes.len(), "change")),
            )
            .detail(changes.join("\n"))
            .hint("Write this migration by hand, or change the desired schema."),
            DiffDestructive { steps } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("the desired schema loses data: {}", counted(steps.len(), "step")),
            )
            .detail(steps.join("\n"))
            .hint("A rename cannot be told from a drop and an add: write a rename by hand. To drop, call it again with allow_destructive => true."),
            DeclarePending { project, pending } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "the desired schema cannot be declared while {} {} pending{}",
                    counted(pending.len(), "migration"),
                    if pending.len() == 1 { "is" } else { "are" },
                    project.mention("in")
                ),
            )
            .detail(format!("Pending: {}.", quoted_list(&pending)))
            .hint("A declared migration is computed from the catalog as it is: apply the pending migrations first."),
            NothingToDeclare { version } => report(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("the catalog already is the desired schema: migration \"{}\" would have no statement", shortened(&version)),
            ),
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
