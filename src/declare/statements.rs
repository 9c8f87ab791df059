//! The statements that take the catalog one snapshot describes (`migrate.snapshot()`) to the
//! catalog another describes: the body of the migration `diff()` writes.
//!
//! Each change is a step in a phase: drops first (what depends on a thing before the thing),
//! then creates (a thing before what depends on it), then what describes objects (owners,
//! grants, comments). Within the phases of drops and creates, steps are ordered by the names
//! their SQL mentions: every name in a snapshot is schema-qualified by the server's deparsers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::postgres::quote::{identifier, literal};

/// Where a step goes in the migration.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    DropAttachments,
    DropForeignKeys,
    DropConstraints,
    DropObjects,
    DropNamespaces,
    CreateNamespaces,
    CreateExtensions,
    CreateTypes,
    CreateSequences,
    CreateObjects,
    AddConstraints,
    AddForeignKeys,
    CreateAttachments,
    Describe,
}

struct Step {
    phase: Phase,
    sql: String,
    /// The qualified names the step creates or drops.
    provides: Vec<String>,
    /// The text whose qualified names the step depends on (creates) or is depended on by (drops).
    mentions: String,
}

/// A grant of an ACL, as the snapshot's lines say it: `grantee PRIVILEGE [WITH GRANT OPTION] BY
/// grantor`, names quoted.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Grant {
    pub grantee: String,
    pub privilege: String,
    pub grantable: bool,
    pub grantor: String,
}

/// The ACL objects of a kind get from their owner until a GRANT or REVOKE changes it, as
/// `acldefault()` gives it, by kind (`r`, `s`, `f`, `T`, `n`) and owner name.
pub type AclDefaults = HashMap<(char, String), Vec<Grant>>;

/// The kinds of `AclDefaults`.
pub const ACL_KINDS: [char; 5] = ['r', 's', 'f', 'T', 'n'];

/// Every owner a snapshot names, for `AclDefaults`.
pub fn owners(snapshot: &Value) -> BTreeSet<String> {
    snapshot
        .as_object()
        .into_iter()
        .flat_map(Map::values)
        .filter_map(Value::as_object)
        .flat_map(Map::values)
        .filter_map(|object| text(object, "owner"))
        .map(str::to_owned)
        .collect()
}

/// What `changes` found.
#[derive(Default)]
pub struct Changes {
    /// The statements, in order, each ending with a semicolon.
    pub statements: Vec<String>,
    /// Steps that lose data: dropped tables, columns, types, sequences, schemas, extensions,
    /// and type changes that are not widenings.
    pub destructive: Vec<String>,
    /// Differences no statement can make in place.
    pub impossible: Vec<String>,
    /// What the statements leave different, said as SQL comments at the top.
    pub notes: Vec<String>,
}

impl Changes {
    /// The body of a migration: the notes, then the statements.
    pub fn sql(&self) -> String {
        let mut sql = String::new();
        for note in &self.notes {
            sql.push_str("-- ");
            sql.push_str(note);
            sql.push('\n');
        }
        for statement in &self.statements {
            sql.push_str(statement);
            sql.push('\n');
        }
        sql
    }
}

/// The statements that take the catalog `before` describes to the one `after` describes, run as
/// `role`, the owner of what they create.
pub fn changes<'v>(
    before: &'v Value,
    after: &'v Value,
    role: &str,
    defaults: &AclDefaults,
) -> Changes {
    let mut diff = Diff {
        role,
        defaults,
        steps: Vec::new(),
        changes: Changes::default(),
        dropped_relations: BTreeSet::new(),
        dropped_columns: BTreeSet::new(),
        identity_columns: Default::default(),
    };
    let section = |snapshot: &'v Value, name: &str| -> &'v Map<String, Value> {
        snapshot
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY)
    };
    diff.schemas(section(before, "schemas"), section(after, "schemas"));
    diff.extensions(section(before, "extensions"), section(after, "extensions"));
    diff.types(section(before, "types"), section(after, "types"));
    diff.relations(section(before, "relations"), section(after, "relations"));
    diff.routines(section(before, "routines"), section(after, "routines"));
    diff.finish()
}

struct Diff<'a> {
    role: &'a str,
    defaults: &'a AclDefaults,
    steps: Vec<Step>,
    changes: Changes,
    /// Relations dropped whole, whose columns, constraints and attachments go with them.
    dropped_relations: BTreeSet<String>,
    /// Columns dropped, as `relation.column`: the sequences they own go with them.
    dropped_columns: BTreeSet<String>,
    /// The identity columns before and after, as `relation.column`: they make and drop their
    /// sequences themselves.
    identity_columns: (BTreeSet<String>, BTreeSet<String>),
}

fn text<'v>(object: &'v Value, field: &str) -> Option<&'v str> {
    object.get(field).and_then(Value::as_str)
}

/// A text field of a value that may be absent.
fn field<'v>(object: Option<&'v Value>, name: &str) -> Option<&'v str> {
    object.and_then(|object| text(object, name))
}

fn flag(object: &Value, field: &str) -> bool {
    object.get(field).and_then(Value::as_bool).unwrap_or(false)
}

fn members<'v>(object: &'v Value, field: &str) -> Vec<(&'v String, &'v Value)> {
    object
        .get(field)
        .and_then(Value::as_object)
        .map(|members| members.iter().collect())
        .unwrap_or_default()
}

/// A section or member list neither side has.
static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// Each key of either side with what the two sides hold under it.
fn paired<'v>(
    before: &'v Map<String, Value>,
    after: &'v Map<String, Value>,
) -> Vec<(&'v String, Option<&'v Value>, Option<&'v Value>)> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .map(|key| (key, before.get(key), after.get(key)))
        .collect()
}

/// `paired` for the members under `field` of two objects, either of which may be absent.
fn paired_members<'v>(
    before: Option<&'v Value>,
    after: Option<&'v Value>,
    field: &str,
) -> Vec<(&'v String, Option<&'v Value>, Option<&'v Value>)> {
    let side = |value: Option<&'v Value>| {
        value
            .and_then(|value| value.get(field))
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY)
    };
    paired(side(before), side(after))
}

/// The schema of a qualified name: its first identifier, as written.
fn schema_of(qualified: &str) -> &str {
    let names = qualified_parts(qualified);
    names.first().copied().unwrap_or(qualified)
}

/// The identifiers of a qualified name, as written (quoted ones keep their quotes).
fn qualified_parts(qualified: &str) -> Vec<&str> {
    let bytes = qualified.as_bytes();
    let (mut parts, mut start, mut quoted) = (Vec::new(), 0, false);
    for (at, byte) in bytes.iter().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b'.' if !quoted => {
                parts.push(&qualified[start..at]);
                start = at + 1;
            }
            b'(' if !quoted => {
                parts.push(&qualified[start..at]);
                return parts;
            }
            _ => {}
        }
    }
    parts.push(&qualified[start..]);
    parts
}

/// A routine's key without its argument types: the name other definitions call it by.
fn routine_name(key: &str) -> String {
    key.split_once('(').map_or(key, |(name, _)| name).to_owned()
}

/// The qualified names (`a.b`, either part bare or quoted) that occur in `sql`, string
/// literals included (`nextval('s.q'::regclass)`).
fn qualified_names(sql: &str) -> BTreeSet<&str> {
    let bytes = sql.as_bytes();
    // Identifier tokens as (start, end).
    let mut tokens: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'"' {
            let start = at;
            at += 1;
            while at < bytes.len() {
                if bytes[at] == b'"' {
                    if bytes.get(at + 1) == Some(&b'"') {
                        at += 2;
                        continue;
                    }
                    break;
                }
                at += 1;
            }
            at = (at + 1).min(bytes.len());
            tokens.push((start, at));
        } else if byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80 {
            let start = at;
            while at < bytes.len()
                && (bytes[at].is_ascii_alphanumeric()
                    || bytes[at] == b'_'
                    || bytes[at] == b'$'
                    || bytes[at] >= 0x80)
            {
                at += 1;
            }
            tokens.push((start, at));
        } else {
            at += 1;
        }
    }
    tokens
        .windows(2)
        .filter(|pair| pair[0].1 + 1 == pair[1].0 && bytes[pair[0].1] == b'.')
        .filter_map(|pair| sql.get(pair[0].0..pair[1].1))
        .collect()
}

/// Orders `steps` so that a step comes after every step that provides a name it mentions
/// (`dependents_last`), or before (drops); steps in a cycle keep their order.
fn in_dependency_order(steps: Vec<Step>, dependents_last: bool) -> Vec<Step> {
    let mut providers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, step) in steps.iter().enumerate() {
        for name in &step.provides {
            providers.entry(name.as_str()).or_default().push(index);
        }
    }
    // edges[a] holds the steps that must come after a.
    let mut edges: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); steps.len()];
    let mut waiting_on = vec![0usize; steps.len()];
    for (index, step) in steps.iter().enumerate() {
        for name in qualified_names(&step.mentions) {
            for &provider in providers.get(name).into_iter().flatten() {
                if provider == index {
                    continue;
                }
                let (first, then) = if dependents_last {
                    (provider, index)
                } else {
                    (index, provider)
                };
                if edges[first].insert(then) {
                    waiting_on[then] += 1;
                }
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..steps.len()).filter(|&i| waiting_on[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    let mut placed = vec![false; steps.len()];
    while order.len() < steps.len() {
        let next = match ready.pop_first() {
            Some(next) => next,
            // A cycle: the first step not placed goes next.
            None => (0..steps.len())
                .find(|&i| !placed[i])
                .expect("a step is left"),
        };
        if placed[next] {
            continue;
        }
        placed[next] = true;
        order.push(next);
        for &then in &edges[next] {
            waiting_on[then] = waiting_on[then].saturating_sub(1);
            if waiting_on[then] == 0 && !placed[then] {
                ready.insert(then);
            }
        }
    }
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|index| slots[index].take().expect("each step once"))
        .collect()
}

/// Whether a column of type `before` keeps every value as type `after`.
fn widens(before: &str, after: &str) -> bool {
    const INTEGERS: [&str; 4] = ["smallint", "integer", "bigint", "numeric"];
    let rank = |name: &str| INTEGERS.iter().position(|&known| known == name);
    if let (Some(from), Some(to)) = (rank(before), rank(after)) {
        return from < to;
    }
    let length = |name: &str, prefix: &str| -> Option<Option<u32>> {
        let rest = name.strip_prefix(prefix)?;
        if rest.is_empty() {
            return Some(None);
        }
        rest.strip_prefix('(')?
            .strip_suffix(')')?
            .parse()
            .ok()
            .map(Some)
    };
    if let Some(from) = length(before, "character varying") {
        if after == "text" {
            return true;
        }
        if let Some(to) = length(after, "character varying") {
            return match (from, to) {
                (_, None) => true,
                (Some(from), Some(to)) => to >= from,
                (None, Some(_)) => false,
            };
        }
    }
    let numeric = |name: &str| -> Option<Option<(u32, u32)>> {
        let rest = name.strip_prefix("numeric")?;
        if rest.is_empty() {
            return Some(None);
        }
        let (precision, scale) = rest.strip_prefix('(')?.strip_suffix(')')?.split_once(',')?;
        Some(Some((
            precision.trim().parse().ok()?,
            scale.trim().parse().ok()?,
        )))
    };
    if let (Some(Some((p1, s1))), Some(to)) = (numeric(before), numeric(after)) {
        return match to {
            None => true,
            Some((p2, s2)) => s2 >= s1 && p2 - s2 >= p1 - s1,
        };
    }
    before == "real" && after == "double precision"
}

/// An enum's labels, in order.
fn labels(value: &Value) -> Vec<&str> {
    value
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// How a kind of relation is named in DDL.
fn relation_word(kind: &str) -> &'static str {
    match kind {
        "view" => "VIEW",
        "materialized view" => "MATERIALIZED VIEW",
        "sequence" => "SEQUENCE",
        "foreign table" => "FOREIGN TABLE",
        "composite type" => "TYPE",
        _ => "TABLE",
    }
}

fn routine_word(kind: &str) -> &'static str {
    match kind {
        "procedure" => "PROCEDURE",
        "aggregate" => "AGGREGATE",
        _ => "FUNCTION",
    }
}

fn type_word(kind: &str) -> &'static str {
    if kind == "domain" { "DOMAIN" } else { "TYPE" }
}

/// A view's or a default's text without the deparser's closing semicolon.
fn unterminated(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

/// `WITH (a=1, b=2)` from a relation's options.
fn with_options(relation: &Value) -> String {
    match relation.get("options").and_then(Value::as_array) {
        Some(options) if !options.is_empty() => {
            let options: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
            format!(" WITH ({})", options.join(", "))
        }
        _ => String::new(),
    }
}

/// A column's definition in CREATE TABLE, ADD COLUMN or CREATE TYPE.
fn column_definition(name: &str, column: &Value) -> String {
    let mut sql = format!(
        "{} {}",
        identifier(name),
        text(column, "type").unwrap_or("text")
    );
    if let Some(collation) = text(column, "collation") {
        sql.push_str(&format!(" COLLATE {collation}"));
    }
    if let Some(expression) = text(column, "generated") {
        sql.push_str(&format!(" GENERATED ALWAYS AS ({expression}) STORED"));
    }
    if let Some(identity) = text(column, "identity") {
        sql.push_str(&format!(
            " GENERATED {} AS IDENTITY",
            identity.to_uppercase()
        ));
    }
    if let Some(default) = text(column, "default") {
        sql.push_str(&format!(" DEFAULT {default}"));
    }
    if flag(column, "not_null") {
        sql.push_str(" NOT NULL");
    }
    sql
}

/// Whether a column changes type or collation: `ALTER COLUMN ... TYPE`, under which its
/// default is set again and views on it are made again.
fn retyped(old: &Value, new: &Value) -> bool {
    text(old, "type") != text(new, "type") || text(old, "collation") != text(new, "collation")
}

/// The text of a column a step depends on: its type and expressions.
fn column_mentions(column: &Value) -> String {
    ["type", "default", "generated"]
        .iter()
        .filter_map(|field| text(column, field))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The definitions of a relation's local columns, in order; their types and expressions are
/// added to `mentions`.
fn column_definitions(relation: &Value, mentions: &mut String) -> Vec<String> {
    local_columns(relation)
        .into_iter()
        .map(|(name, column)| {
            mentions.push_str(&column_mentions(column));
            mentions.push(' ');
            column_definition(name, column)
        })
        .collect()
}

/// A relation's local columns in position order.
fn local_columns(relation: &Value) -> Vec<(&String, &Value)> {
    let mut columns: Vec<(&String, &Value)> = members(relation, "columns")
        .into_iter()
        .filter(|(_, column)| !flag(column, "inherited"))
        .collect();
    columns.sort_by_key(|(_, column)| column.get("position").and_then(Value::as_i64));
    columns
}

/// The grants of an object's `grants` lines; none while it has its kind's default ACL.
fn grant_lines(object: Option<&Value>) -> Option<Vec<Grant>> {
    let lines = object?.get("grants")?.as_array()?;
    Some(
        lines
            .iter()
            .filter_map(Value::as_str)
            .filter_map(parse_grant)
            .collect(),
    )
}

/// The snapshot's grant lines parsed, or none when the line is not one.
fn parse_grant(line: &str) -> Option<Grant> {
    let (left, grantor) = line.rsplit_once(" BY ")?;
    let grantee_end = if left.starts_with('"') {
        let bytes = left.as_bytes();
        let mut at = 1;
        loop {
            match bytes.get(at)? {
                b'"' if bytes.get(at + 1) == Some(&b'"') => at += 2,
                b'"' => break at + 1,
                _ => at += 1,
            }
        }
    } else {
        left.find(' ')?
    };
    let (grantee, rest) = left.split_at(grantee_end);
    let rest = rest.trim();
    let (privilege, grantable) = match rest.strip_suffix(" WITH GRANT OPTION") {
        Some(privilege) => (privilege, true),
        None => (rest, false),
    };
    Some(Grant {
        grantee: grantee.to_owned(),
        privilege: privilege.to_owned(),
        grantable,
        grantor: grantor.to_owned(),
    })
}

impl Diff<'_> {
    fn step(&mut self, phase: Phase, sql: String, provides: Vec<String>, mentions: String) {
        self.steps.push(Step {
            phase,
            sql,
            provides,
            mentions,
        });
    }

    /// A step that neither makes nor drops anything others refer to.
    fn plain(&mut self, phase: Phase, sql: String) {
        self.step(phase, sql, Vec::new(), String::new());
    }

    fn describe(&mut self, sql: String) {
        self.plain(Phase::Describe, sql);
    }

    fn destructive(&mut self, what: String) {
        self.changes.destructive.push(what);
    }

    fn impossible(&mut self, what: String) {
        self.changes.impossible.push(what);
    }

    fn finish(mut self) -> Changes {
        let mut steps = std::mem::take(&mut self.steps);
        steps.sort_by_key(|step| step.phase);
        let mut ordered = Vec::with_capacity(steps.len());
        let mut rest = steps.into_iter().peekable();
        while let Some(first) = rest.next() {
            let phase = first.phase;
            let mut group = vec![first];
            while rest.peek().is_some_and(|step| step.phase == phase) {
                group.extend(rest.next());
            }
            match phase {
                Phase::DropObjects => ordered.extend(in_dependency_order(group, false)),
                Phase::CreateObjects => ordered.extend(in_dependency_order(group, true)),
                _ => ordered.extend(group),
            }
        }
        self.changes.statements = ordered.into_iter().map(|step| step.sql + ";").collect();
        self.changes
    }

    /// Comment, owner and grants of an object that is new (`before` none) or kept.
    fn describe_object(
        &mut self,
        word: &str,
        name: &str,
        acl_kind: Option<char>,
        before: Option<&Value>,
        after: &Value,
    ) {
        self.comment(&format!("{word} {name}"), before, after);
        let owner_before = before.map_or(self.role, |before| text(before, "owner").unwrap_or(""));
        let owner_after = text(after, "owner").unwrap_or(self.role);
        if owner_before != owner_after {
            self.describe(format!(
                "ALTER {word} {name} OWNER TO {}",
                identifier(owner_after)
            ));
        }
        if let Some(kind) = acl_kind {
            let grant_word = match word {
                "VIEW" | "MATERIALIZED VIEW" | "FOREIGN TABLE" => "TABLE",
                "FUNCTION" | "PROCEDURE" | "AGGREGATE" => "ROUTINE",
                other => other,
            };
            let target = format!("{grant_word} {name}");
            let acl = |value: Option<&Value>, owner: &str| -> Option<Vec<Grant>> {
                value?;
                Some(self.acl(value, kind, owner))
            };
            // An owner change carries the old owner's grants to the new one.
            let carried: Vec<Grant> = acl(before, owner_before)
                .unwrap_or_else(|| self.default_acl(kind, owner_after))
                .into_iter()
                .map(|grant| {
                    let swap = |role: String| {
                        if role == identifier(owner_before) {
                            identifier(owner_after)
                        } else {
                            role
                        }
                    };
                    Grant {
                        grantee: swap(grant.grantee),
                        grantor: swap(grant.grantor),
                        ..grant
                    }
                })
                .collect();
            let wanted = self.acl(Some(after), kind, owner_after);
            self.grants(&target, None, &carried, &wanted, owner_after);
        }
    }

    /// The grants an object's ACL holds: its lines, or its kind's defaults for its owner.
    fn acl(&self, object: Option<&Value>, kind: char, owner: &str) -> Vec<Grant> {
        grant_lines(object).unwrap_or_else(|| self.default_acl(kind, owner))
    }

    fn default_acl(&self, kind: char, owner: &str) -> Vec<Grant> {
        self.defaults
            .get(&(kind, owner.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// GRANT and REVOKE from `had` to `wanted`, on `target` (or its `columns`).
    fn grants(
        &mut self,
        target: &str,
        column: Option<&str>,
        had: &[Grant],
        wanted: &[Grant],
        owner: &str,
    ) {
        let privilege = |grant: &Grant| match column {
            Some(column) => format!("{} ({})", grant.privilege, identifier(column)),
            None => grant.privilege.clone(),
        };
        for grant in had.iter().filter(|grant| !wanted.contains(grant)) {
            let kept = wanted.iter().any(|other| {
                other.grantee == grant.grantee
                    && other.privilege == grant.privilege
                    && other.grantor == grant.grantor
            });
            // Only the grant option goes when the privilege stays.
            let option = if kept { "GRANT OPTION FOR " } else { "" };
            self.describe(format!(
                "REVOKE {option}{} ON {target} FROM {}",
                privilege(grant),
                grant.grantee
            ));
        }
        for grant in wanted.iter().filter(|grant| !had.contains(grant)) {
            if grant.grantor != identifier(owner) {
                self.changes.notes.push(format!(
                    "{} {} ON {target} was granted by {}: granted here by the role that runs the migration",
                    grant.privilege, grant.grantee, grant.grantor
                ));
            }
            self.describe(format!(
                "GRANT {} ON {target} TO {}{}",
                privilege(grant),
                grant.grantee,
                if grant.grantable {
                    " WITH GRANT OPTION"
                } else {
                    ""
                }
            ));
        }
    }

    fn schemas(&mut self, before: &Map<String, Value>, after: &Map<String, Value>) {
        for (name, was, now) in paired(before, after) {
            let quoted = identifier(name);
            match (was, now) {
                (Some(_), None) => {
                    self.destructive(format!("drop schema {quoted}"));
                    self.plain(Phase::DropNamespaces, format!("DROP SCHEMA {quoted}"));
                }
                (None, Some(now)) => {
                    self.plain(Phase::CreateNamespaces, format!("CREATE SCHEMA {quoted}"));
                    self.describe_object("SCHEMA", &quoted, Some('n'), None, now);
                }
                (Some(was), Some(now)) => {
                    self.describe_object("SCHEMA", &quoted, Some('n'), Some(was), now)
                }
                (None, None) => {}
            }
        }
    }

    fn extensions(&mut self, before: &Map<String, Value>, after: &Map<String, Value>) {
        for (name, was, now) in paired(before, after) {
            let quoted = identifier(name);
            match (was, now) {
                (Some(_), None) => {
                    self.destructive(format!("drop extension {quoted}"));
                    self.plain(Phase::DropNamespaces, format!("DROP EXTENSION {quoted}"));
                }
                (None, Some(now)) => self.plain(
                    Phase::CreateExtensions,
                    format!(
                        "CREATE EXTENSION IF NOT EXISTS {quoted} WITH SCHEMA {} VERSION {}",
                        identifier(text(now, "schema").unwrap_or("public")),
                        literal(text(now, "version").unwrap_or(""))
                    ),
                ),
                (Some(was), Some(now)) => {
                    if text(was, "version") != text(now, "version") {
                        self.plain(
                            Phase::CreateExtensions,
                            format!(
                                "ALTER EXTENSION {quoted} UPDATE TO {}",
                                literal(text(now, "version").unwrap_or(""))
                            ),
                        );
                    }
                    if text(was, "schema") != text(now, "schema") {
                        self.plain(
                            Phase::CreateExtensions,
                            format!(
                                "ALTER EXTENSION {quoted} SET SCHEMA {}",
                                identifier(text(now, "schema").unwrap_or("public"))
                            ),
                        );
                    }
                    self.comment(&format!("EXTENSION {quoted}"), Some(was), now);
                }
                (None, None) => {}
            }
        }
    }

    fn types(&mut self, before: &Map<String, Value>, after: &Map<String, Value>) {
        for (key, was, now) in paired(before, after) {
            match (was, now) {
                (Some(was), None) => self.drop_type(key, was),
                (None, Some(now)) => self.create_type(key, now),
                (Some(was), Some(now)) if was != now => self.alter_type(key, was, now),
                _ => {}
            }
        }
    }

    fn drop_type(&mut self, key: &str, was: &Value) {
        let word = type_word(text(was, "kind").unwrap_or(""));
        self.destructive(format!("drop {} {key}", word.to_lowercase()));
        self.step(
            Phase::DropObjects,
            format!("DROP {word} {key}"),
            vec![key.to_owned()],
            Self::type_mentions(was),
        );
    }

    fn type_mentions(value: &Value) -> String {
        let mut mentions = [text(value, "base"), text(value, "default")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        for (_, check) in members(value, "constraints") {
            mentions.push(' ');
            mentions.push_str(check.as_str().unwrap_or(""));
        }
        mentions
    }

    fn create_type(&mut self, key: &str, now: &Value) {
        let kind = text(now, "kind").unwrap_or("");
        let (phase, sql) = match kind {
            "enum" => {
                let labels: Vec<String> = labels(now).into_iter().map(literal).collect();
                (
                    Phase::CreateTypes,
                    format!("CREATE TYPE {key} AS ENUM ({})", labels.join(", ")),
                )
            }
            "range" => {
                let subtype = now.get("subtype").cloned().unwrap_or_default();
                let mut parts = vec![format!(
                    "SUBTYPE = {}",
                    text(&subtype, "type").unwrap_or("")
                )];
                if let Some(opclass) = text(&subtype, "opclass") {
                    parts.push(format!("SUBTYPE_OPCLASS = {opclass}"));
                }
                if let Some(difference) = text(&subtype, "difference") {
                    parts.push(format!("SUBTYPE_DIFF = {difference}"));
                }
                if text(&subtype, "canonical").is_some() {
                    self.impossible(format!(
                        "range type {key} has a canonical function, which needs a shell type first"
                    ));
                }
                (
                    Phase::CreateTypes,
                    format!("CREATE TYPE {key} AS RANGE ({})", parts.join(", ")),
                )
            }
            "domain" => {
                let mut sql = format!("CREATE DOMAIN {key} AS {}", text(now, "base").unwrap_or(""));
                if let Some(collation) = text(now, "collation") {
                    sql.push_str(&format!(" COLLATE {collation}"));
                }
                if let Some(default) = text(now, "default") {
                    sql.push_str(&format!(" DEFAULT {default}"));
                }
                if flag(now, "not_null") {
                    sql.push_str(" NOT NULL");
                }
                for (name, check) in members(now, "constraints") {
                    sql.push_str(&format!(
                        " CONSTRAINT {} {}",
                        identifier(name),
                        check.as_str().unwrap_or("")
                    ));
                }
                (Phase::CreateObjects, sql)
            }
            _ => {
                self.impossible(format!(
                    "base type {key} needs input and output functions written in C"
                ));
                return;
            }
        };
        self.step(phase, sql, vec![key.to_owned()], Self::type_mentions(now));
        self.describe_object(type_word(kind), key, Some('T'), None, now);
    }

    fn alter_type(&mut self, key: &str, was: &Value, now: &Value) {
        let kind = text(now, "kind").unwrap_or("");
        if text(was, "kind") != Some(kind) {
            self.drop_type(key, was);
            self.create_type(key, now);
            return;
        }
        match kind {
            "enum" => {
                let (old, new) = (labels(was), labels(now));
                let kept: Vec<&&str> = new.iter().filter(|label| old.contains(label)).collect();
                if kept.len() != old.len() || kept.into_iter().ne(old.iter()) {
                    self.impossible(format!(
                        "enum {key} loses or reorders labels: PostgreSQL can only add them"
                    ));
                } else {
                    for (at, label) in new.iter().enumerate() {
                        if old.contains(label) {
                            continue;
                        }
                        let place = match new[at + 1..].iter().find(|next| old.contains(next)) {
                            Some(next) => format!(" BEFORE {}", literal(next)),
                            None => String::new(),
                        };
                        self.plain(
                            Phase::CreateTypes,
                            format!("ALTER TYPE {key} ADD VALUE {}{place}", literal(label)),
                        );
                    }
                }
            }
            "domain" => {
                if text(was, "base") != text(now, "base")
                    || text(was, "collation") != text(now, "collation")
                {
                    self.impossible(format!(
                        "domain {key} changes its base type or collation: drop it and create it again"
                    ));
                }
                if text(was, "default") != text(now, "default") {
                    self.step(
                        Phase::CreateObjects,
                        match text(now, "default") {
                            Some(default) => format!("ALTER DOMAIN {key} SET DEFAULT {default}"),
                            None => format!("ALTER DOMAIN {key} DROP DEFAULT"),
                        },
                        Vec::new(),
                        Self::type_mentions(now),
                    );
                }
                if flag(was, "not_null") != flag(now, "not_null") {
                    let verb = if flag(now, "not_null") { "SET" } else { "DROP" };
                    self.plain(
                        Phase::CreateObjects,
                        format!("ALTER DOMAIN {key} {verb} NOT NULL"),
                    );
                }
                for (name, old, new) in paired_members(Some(was), Some(now), "constraints") {
                    if old == new {
                        continue;
                    }
                    if old.is_some() {
                        self.plain(
                            Phase::DropConstraints,
                            format!("ALTER DOMAIN {key} DROP CONSTRAINT {}", identifier(name)),
                        );
                    }
                    if let Some(check) = new.and_then(Value::as_str) {
                        self.plain(
                            Phase::AddConstraints,
                            format!(
                                "ALTER DOMAIN {key} ADD CONSTRAINT {} {check}",
                                identifier(name)
                            ),
                        );
                    }
                }
            }
            _ => {
                let strip = |value: &Value| {
                    let mut value = value.clone();
                    if let Some(object) = value.as_object_mut() {
                        for field in ["owner", "grants", "comment"] {
                            object.remove(field);
                        }
                    }
                    value
                };
                if strip(was) != strip(now) {
                    self.impossible(format!(
                        "{kind} type {key} changes its definition: drop it and create it again"
                    ));
                }
            }
        }
        self.describe_object(type_word(kind), key, Some('T'), Some(was), now);
    }

    fn routines(&mut self, before: &Map<String, Value>, after: &Map<String, Value>) {
        for (key, was, now) in paired(before, after) {
            match (was, now) {
                (Some(was), None) => self.drop_routine(key, was),
                (None, Some(now)) => self.create_routine(key, now, None),
                (Some(was), Some(now)) if was != now => {
                    let header = |value: &Value| {
                        text(value, "definition").map(|definition| {
                            definition
                                .lines()
                                .take_while(|line| !line.starts_with("AS ") && line != &"AS")
                                .filter(|line| {
                                    line.starts_with(" RETURNS") || line.starts_with("CREATE")
                                })
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                    };
                    let replaceable = text(was, "kind") == text(now, "kind")
                        && text(now, "kind") != Some("aggregate")
                        && header(was) == header(now);
                    if replaceable {
                        if text(was, "definition") != text(now, "definition") {
                            self.create_routine(key, now, Some(was));
                        } else {
                            self.describe_object(
                                routine_word(text(now, "kind").unwrap_or("")),
                                key,
                                Some('f'),
                                Some(was),
                                now,
                            );
                        }
                    } else {
                        self.drop_routine(key, was);
                        self.create_routine(key, now, None);
                    }
                }
                _ => {}
            }
        }
    }

    fn drop_routine(&mut self, key: &str, was: &Value) {
        self.step(
            Phase::DropObjects,
            format!(
                "DROP {} {key}",
                routine_word(text(was, "kind").unwrap_or(""))
            ),
            vec![routine_name(key)],
            text(was, "definition").unwrap_or("").to_owned(),
        );
    }

    /// Creates the routine `key` as `now` says, or replaces the one `was` says.
    fn create_routine(&mut self, key: &str, now: &Value, was: Option<&Value>) {
        let kind = text(now, "kind").unwrap_or("");
        let sql = match now.get("aggregate") {
            Some(aggregate) if kind == "aggregate" => {
                let function = |field: &str| text(aggregate, field).map(routine_name);
                let mut parts = vec![
                    format!("SFUNC = {}", function("transition").unwrap_or_default()),
                    format!("STYPE = {}", text(aggregate, "state").unwrap_or("")),
                ];
                if let Some(last) = function("final") {
                    parts.push(format!("FINALFUNC = {last}"));
                }
                if let Some(initial) = text(aggregate, "initial") {
                    parts.push(format!("INITCOND = {}", literal(initial)));
                }
                format!("CREATE AGGREGATE {key} ({})", parts.join(", "))
            }
            _ => unterminated(text(now, "definition").unwrap_or("")).to_owned(),
        };
        let mentions = match now.get("aggregate") {
            Some(aggregate) => aggregate.to_string(),
            None => sql.clone(),
        };
        self.step(Phase::CreateObjects, sql, vec![routine_name(key)], mentions);
        self.describe_object(routine_word(kind), key, Some('f'), was, now);
    }

    fn relations(&mut self, before: &Map<String, Value>, after: &Map<String, Value>) {
        let identity_columns = |relations: &Map<String, Value>| -> BTreeSet<String> {
            relations
                .iter()
                .flat_map(|(key, relation)| {
                    members(relation, "columns")
                        .into_iter()
                        .filter(|(_, column)| text(column, "identity").is_some())
                        .map(move |(name, _)| format!("{key}.{}", identifier(name)))
                })
                .collect()
        };
        self.identity_columns = (identity_columns(before), identity_columns(after));
        // What is dropped whole is known before any drop of what it holds is written.
        for (key, was, now) in paired(before, after) {
            if let Some(was) = was
                && now.is_none_or(|now| self.recreated(was, now))
            {
                self.dropped_relations.insert(key.clone());
            }
        }
        // A view on a column whose type changes, or on a relation made again, is made again
        // too: PostgreSQL refuses to change what a view depends on.
        let retyped: BTreeSet<String> = paired(before, after)
            .into_iter()
            .filter(|(_, was, now)| {
                paired_members(*was, *now, "columns")
                    .into_iter()
                    .any(|(_, old, new)| old.zip(new).is_some_and(|(old, new)| retyped(old, new)))
            })
            .map(|(key, _, _)| key.clone())
            .collect();
        loop {
            let depending: Vec<String> = before
                .iter()
                .filter(|(key, view)| {
                    matches!(text(view, "kind"), Some("view" | "materialized view"))
                        && !self.dropped_relations.contains(*key)
                        && qualified_names(text(view, "definition").unwrap_or(""))
                            .into_iter()
                            .any(|name| {
                                retyped.contains(name) || self.dropped_relations.contains(name)
                            })
                })
                .map(|(key, _)| key.clone())
                .collect();
            if depending.is_empty() {
                break;
            }
            self.dropped_relations.extend(depending);
        }
        for (key, was, now) in paired(before, after) {
            match (was, now) {
                (Some(was), None) => self.drop_relation(key, was),
                (None, Some(now)) => self.create_relation(key, now),
                (Some(was), Some(now)) if was != now || self.dropped_relations.contains(key) => {
                    if self.dropped_relations.contains(key) {
                        self.drop_relation(key, was);
                        self.create_relation(key, now);
                    } else {
                        self.alter_relation(key, was, now);
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether `now` cannot be reached from `was` without dropping the relation.
    fn recreated(&self, was: &Value, now: &Value) -> bool {
        let kind = text(now, "kind").unwrap_or("");
        if text(was, "kind") != Some(kind) {
            return true;
        }
        let fixed = |value: &Value| {
            [
                "partition_key",
                "partition_of",
                "partition_bound",
                "inherits",
            ]
            .map(|field| value.get(field).cloned())
        };
        if fixed(was) != fixed(now) {
            return true;
        }
        match kind {
            "materialized view" => text(was, "definition") != text(now, "definition"),
            // CREATE OR REPLACE VIEW keeps the columns it had, in order, and may add more.
            "view" => {
                let columns = |value: &Value| {
                    let mut columns: Vec<(i64, String, String)> = members(value, "columns")
                        .into_iter()
                        .map(|(name, column)| {
                            (
                                column.get("position").and_then(Value::as_i64).unwrap_or(0),
                                name.clone(),
                                text(column, "type").unwrap_or("").to_owned(),
                            )
                        })
                        .collect();
                    columns.sort();
                    columns
                };
                let (old, new) = (columns(was), columns(now));
                !new.starts_with(&old)
            }
            _ => false,
        }
    }

    /// Whether dropping the relation loses data.
    fn holds_data(kind: &str) -> bool {
        matches!(kind, "table" | "partitioned table" | "sequence")
    }

    fn drop_relation(&mut self, key: &str, was: &Value) {
        let kind = text(was, "kind").unwrap_or("");
        // A partition goes with its parent; a sequence with the column that owns it.
        if text(was, "partition_of").is_some_and(|parent| self.dropped_relations.contains(parent)) {
            return;
        }
        if let Some(owner) = was.get("sequence").and_then(|s| text(s, "owned_by")) {
            let table = qualified_parts(owner);
            let table = table[..table.len().saturating_sub(1)].join(".");
            // An identity column's sequence goes with the column or its identity.
            if self.dropped_relations.contains(&table)
                || self.dropped_columns.contains(owner)
                || self.identity_columns.0.contains(owner)
            {
                return;
            }
        }
        let word = relation_word(kind);
        if Self::holds_data(kind) {
            self.destructive(format!("drop {} {key}", kind));
        }
        // What it refers to is dropped after it: its columns' types and defaults, the tables
        // its foreign keys reference.
        let mut mentions = text(was, "definition").unwrap_or("").to_owned();
        for (_, column) in members(was, "columns") {
            mentions.push(' ');
            mentions.push_str(&column_mentions(column));
        }
        for (_, constraint) in members(was, "constraints") {
            mentions.push(' ');
            mentions.push_str(text(constraint, "definition").unwrap_or(""));
        }
        self.step(
            Phase::DropObjects,
            format!("DROP {word} {key}"),
            vec![key.to_owned()],
            mentions,
        );
    }

    fn create_relation(&mut self, key: &str, now: &Value) {
        let kind = text(now, "kind").unwrap_or("");
        let mut mentions = String::new();
        let sql = match kind {
            "table" | "partitioned table" => {
                let unlogged = if flag(now, "unlogged") {
                    "UNLOGGED "
                } else {
                    ""
                };
                let columns = column_definitions(now, &mut mentions);
                let mut sql = match text(now, "partition_of") {
                    Some(parent) => {
                        mentions.push_str(parent);
                        format!(
                            "CREATE {unlogged}TABLE {key} PARTITION OF {parent} {}",
                            text(now, "partition_bound").unwrap_or("DEFAULT")
                        )
                    }
                    None => format!(
                        "CREATE {unlogged}TABLE {key} (\n    {}\n)",
                        columns.join(",\n    ")
                    ),
                };
                if let Some(parents) = now.get("inherits").and_then(Value::as_array) {
                    let parents: Vec<&str> = parents.iter().filter_map(Value::as_str).collect();
                    mentions.push_str(&parents.join(" "));
                    sql.push_str(&format!(" INHERITS ({})", parents.join(", ")));
                }
                if let Some(partition_key) = text(now, "partition_key") {
                    sql.push_str(&format!(" PARTITION BY {partition_key}"));
                }
                sql.push_str(&with_options(now));
                sql
            }
            "view" | "materialized view" => {
                let definition = unterminated(text(now, "definition").unwrap_or(""));
                mentions.push_str(definition);
                let data = if kind == "view" { "" } else { " WITH DATA" };
                format!(
                    "CREATE {} {key}{} AS\n{definition}{data}",
                    relation_word(kind),
                    with_options(now)
                )
            }
            "composite type" => {
                let columns = column_definitions(now, &mut mentions);
                format!("CREATE TYPE {key} AS (\n    {}\n)", columns.join(",\n    "))
            }
            "sequence" => {
                let owner = now.get("sequence").and_then(|s| text(s, "owned_by"));
                // An identity column makes its own sequence, whose options follow.
                if owner.is_some_and(|owner| self.identity_columns.1.contains(owner)) {
                    if !Self::identity_defaults(now) {
                        self.sequence_options(key, None, now);
                    }
                    self.describe_object("SEQUENCE", key, Some('s'), None, now);
                    return;
                }
                let sequence = now.get("sequence").cloned().unwrap_or_default();
                self.step(
                    Phase::CreateSequences,
                    format!("CREATE SEQUENCE {key}{}", Self::sequence_clauses(&sequence)),
                    vec![key.to_owned()],
                    String::new(),
                );
                if let Some(owner) = owner {
                    self.describe(format!("ALTER SEQUENCE {key} OWNED BY {owner}"));
                }
                self.describe_object("SEQUENCE", key, Some('s'), None, now);
                return;
            }
            _ => {
                self.impossible(format!("{kind} {key} is not created by diff()"));
                return;
            }
        };
        self.step(Phase::CreateObjects, sql, vec![key.to_owned()], mentions);
        self.relation_parts(key, None, now);
    }

    /// Whether a sequence has the options an identity column gives its own.
    fn identity_defaults(relation: &Value) -> bool {
        let Some(sequence) = relation.get("sequence") else {
            return false;
        };
        let number = |field: &str| sequence.get(field).and_then(Value::as_i64);
        let max = match text(sequence, "type") {
            Some("smallint") => i64::from(i16::MAX),
            Some("integer") => i64::from(i32::MAX),
            _ => i64::MAX,
        };
        [
            number("start"),
            number("increment"),
            number("min"),
            number("cache"),
        ] == [Some(1); 4]
            && number("max") == Some(max)
            && !flag(sequence, "cycle")
    }

    fn sequence_clauses(sequence: &Value) -> String {
        let number = |field: &str| {
            sequence
                .get(field)
                .map(Value::to_string)
                .unwrap_or_default()
        };
        format!(
            " AS {} START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
            text(sequence, "type").unwrap_or("bigint"),
            number("start"),
            number("increment"),
            number("min"),
            number("max"),
            number("cache"),
            if flag(sequence, "cycle") {
                " CYCLE"
            } else {
                " NO CYCLE"
            }
        )
    }

    /// ALTER SEQUENCE for options that differ (`was` none: a sequence an identity column made
    /// with the defaults, which differ where the snapshot says otherwise).
    fn sequence_options(&mut self, key: &str, was: Option<&Value>, now: &Value) {
        let (old, new) = (
            was.and_then(|was| was.get("sequence")).cloned(),
            now.get("sequence").cloned().unwrap_or_default(),
        );
        let fields = |value: &Value| {
            ["type", "start", "increment", "min", "max", "cache", "cycle"]
                .map(|field| value.get(field).cloned())
        };
        if old.as_ref().map(fields) != Some(fields(&new)) {
            self.step(
                Phase::CreateObjects,
                format!("ALTER SEQUENCE {key}{}", Self::sequence_clauses(&new)),
                Vec::new(),
                key.to_owned(),
            );
        }
        let owner = |value: Option<&Value>| {
            value
                .and_then(|value| value.get("sequence"))
                .and_then(|s| text(s, "owned_by"))
                .map(str::to_owned)
        };
        if was.is_some() && owner(was) != owner(Some(now)) {
            self.describe(format!(
                "ALTER SEQUENCE {key} OWNED BY {}",
                owner(Some(now)).unwrap_or_else(|| "NONE".to_owned())
            ));
        }
    }

    fn alter_relation(&mut self, key: &str, was: &Value, now: &Value) {
        let kind = text(now, "kind").unwrap_or("");
        let word = relation_word(kind);
        match kind {
            "view" => {
                if text(was, "definition") != text(now, "definition") {
                    let definition = unterminated(text(now, "definition").unwrap_or(""));
                    self.step(
                        Phase::CreateObjects,
                        format!(
                            "CREATE OR REPLACE VIEW {key}{} AS\n{definition}",
                            with_options(now)
                        ),
                        vec![key.to_owned()],
                        definition.to_owned(),
                    );
                }
            }
            "sequence" => self.sequence_options(key, Some(was), now),
            _ => self.alter_columns(key, was, now),
        }
        if flag(was, "unlogged") != flag(now, "unlogged") {
            let to = if flag(now, "unlogged") {
                "UNLOGGED"
            } else {
                "LOGGED"
            };
            self.step(
                Phase::CreateObjects,
                format!("ALTER {word} {key} SET {to}"),
                Vec::new(),
                key.to_owned(),
            );
        }
        let options = |value: &Value| -> BTreeMap<String, String> {
            value
                .get("options")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(|option| option.split_once('='))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect()
        };
        let (old, new) = (options(was), options(now));
        let reset: Vec<&str> = old
            .keys()
            .filter(|name| !new.contains_key(*name))
            .map(String::as_str)
            .collect();
        if !reset.is_empty() {
            self.describe(format!("ALTER {word} {key} RESET ({})", reset.join(", ")));
        }
        let set: Vec<String> = new
            .iter()
            .filter(|(name, value)| old.get(*name) != Some(value))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if !set.is_empty() {
            self.describe(format!("ALTER {word} {key} SET ({})", set.join(", ")));
        }
        self.relation_parts(key, Some(was), now);
    }

    fn alter_columns(&mut self, key: &str, was: &Value, now: &Value) {
        let (target, member) = Self::column_words(now);
        for (name, old, new) in paired_members(Some(was), Some(now), "columns") {
            let column = identifier(name);
            let alter = format!("{target} {key} ALTER {member} {column}");
            let added = |diff: &mut Self, new: &Value| {
                diff.step(
                    Phase::CreateObjects,
                    format!(
                        "{target} {key} ADD {member} {}",
                        column_definition(name, new)
                    ),
                    vec![key.to_owned()],
                    column_mentions(new),
                );
            };
            match (old, new) {
                (Some(old), None) if !flag(old, "inherited") => {
                    self.drop_column(key, name, old, now);
                }
                (None, Some(new)) if !flag(new, "inherited") => added(self, new),
                (Some(old), Some(new)) if old != new && !flag(new, "inherited") => {
                    if text(old, "generated") != text(new, "generated") {
                        if text(new, "generated").is_none() {
                            self.step(
                                Phase::CreateObjects,
                                format!("{alter} DROP EXPRESSION"),
                                vec![key.to_owned()],
                                String::new(),
                            );
                        } else {
                            self.drop_column(key, name, old, now);
                            added(self, new);
                            continue;
                        }
                    }
                    let (old_type, new_type) = (
                        text(old, "type").unwrap_or(""),
                        text(new, "type").unwrap_or(""),
                    );
                    let retyped = retyped(old, new);
                    if retyped {
                        let collate = text(new, "collation")
                            .map(|collation| format!(" COLLATE {collation}"))
                            .unwrap_or_default();
                        let using = if widens(old_type, new_type) {
                            String::new()
                        } else {
                            self.destructive(format!(
                                "change column {column} of {key} from {old_type} to {new_type}"
                            ));
                            format!(" USING {column}::{new_type}")
                        };
                        // A default of the old type may not cast: it is set again after.
                        if text(old, "default").is_some() {
                            self.step(
                                Phase::CreateObjects,
                                format!("{alter} DROP DEFAULT"),
                                vec![key.to_owned()],
                                String::new(),
                            );
                        }
                        self.step(
                            Phase::CreateObjects,
                            format!("{alter} TYPE {new_type}{collate}{using}"),
                            vec![key.to_owned()],
                            new_type.to_owned(),
                        );
                    }
                    // The default dropped before the type change is set again.
                    let reset = retyped && text(old, "default").is_some();
                    if text(old, "default") != text(new, "default") || reset {
                        let sql = match text(new, "default") {
                            Some(default) => format!("{alter} SET DEFAULT {default}"),
                            None if !reset => format!("{alter} DROP DEFAULT"),
                            None => String::new(),
                        };
                        if !sql.is_empty() {
                            self.step(
                                Phase::CreateObjects,
                                sql,
                                vec![key.to_owned()],
                                column_mentions(new),
                            );
                        }
                    }
                    let (old_identity, new_identity) =
                        (text(old, "identity"), text(new, "identity"));
                    if flag(new, "not_null") && !flag(old, "not_null") {
                        self.step(
                            Phase::CreateObjects,
                            format!("{alter} SET NOT NULL"),
                            vec![key.to_owned()],
                            String::new(),
                        );
                    }
                    match (old_identity, new_identity) {
                        (None, Some(identity)) => self.step(
                            Phase::CreateObjects,
                            format!(
                                "{alter} ADD GENERATED {} AS IDENTITY",
                                identity.to_uppercase()
                            ),
                            vec![key.to_owned()],
                            String::new(),
                        ),
                        (Some(_), None) => self.step(
                            Phase::CreateObjects,
                            format!("{alter} DROP IDENTITY"),
                            vec![key.to_owned()],
                            String::new(),
                        ),
                        (Some(old), Some(new)) if old != new => self.step(
                            Phase::CreateObjects,
                            format!("{alter} SET GENERATED {}", new.to_uppercase()),
                            vec![key.to_owned()],
                            String::new(),
                        ),
                        _ => {}
                    }
                    if !flag(new, "not_null") && flag(old, "not_null") {
                        self.step(
                            Phase::CreateObjects,
                            format!("{alter} DROP NOT NULL"),
                            vec![key.to_owned()],
                            String::new(),
                        );
                    }
                    if text(old, "storage") != text(new, "storage") {
                        self.describe(format!(
                            "{alter} SET STORAGE {}",
                            match text(new, "storage") {
                                Some("p") => "PLAIN",
                                Some("e") => "EXTERNAL",
                                Some("m") => "MAIN",
                                Some("x") => "EXTENDED",
                                _ => "DEFAULT",
                            }
                        ));
                    }
                }
                _ => {}
            }
        }
        // Added columns go last: where the desired schema has one among the others, the order
        // differs, which only a rebuilt table can change.
        let order = |relation: &Value| -> Vec<String> {
            local_columns(relation)
                .into_iter()
                .map(|(name, _)| name.clone())
                .collect()
        };
        let (old, new) = (order(was), order(now));
        let reached: Vec<&String> = old
            .iter()
            .filter(|name| new.contains(name))
            .chain(new.iter().filter(|name| !old.contains(name)))
            .collect();
        if reached.into_iter().ne(new.iter()) {
            self.changes.notes.push(format!(
                "the columns of {key} will not be in the desired order: added columns go last"
            ));
        }
    }

    /// How DDL alters a relation's columns: a table's, or a composite type's attributes.
    fn column_words(relation: &Value) -> (&'static str, &'static str) {
        if text(relation, "kind") == Some("composite type") {
            ("ALTER TYPE", "ATTRIBUTE")
        } else {
            ("ALTER TABLE", "COLUMN")
        }
    }

    fn drop_column(&mut self, key: &str, name: &str, old: &Value, relation: &Value) {
        let (target, member) = Self::column_words(relation);
        let column = identifier(name);
        self.destructive(format!("drop {} {column} of {key}", member.to_lowercase()));
        self.dropped_columns.insert(format!("{key}.{column}"));
        self.step(
            Phase::DropObjects,
            format!("{target} {key} DROP {member} {column}"),
            Vec::new(),
            format!("{key} {}", column_mentions(old)),
        );
    }

    /// Constraints, indexes, triggers, policies, statistics, row security, comments, owner
    /// and grants of a relation that is new (`was` none) or kept.
    fn relation_parts(&mut self, key: &str, was: Option<&Value>, now: &Value) {
        let kind = text(now, "kind").unwrap_or("");
        let word = relation_word(kind);
        let table = format!("ALTER TABLE {key}");
        let schema = schema_of(key).to_owned();
        let backing: BTreeSet<String> = members(now, "constraints")
            .into_iter()
            .chain(
                was.map(|was| members(was, "constraints"))
                    .unwrap_or_default(),
            )
            .filter(|(_, constraint)| {
                matches!(
                    text(constraint, "type"),
                    Some("primary key" | "unique" | "exclusion")
                )
            })
            .map(|(name, _)| name.clone())
            .collect();
        for (name, old, new) in paired_members(was, Some(now), "constraints") {
            let quoted = identifier(name);
            let inherited = |value: Option<&Value>| value.is_some_and(|v| flag(v, "inherited"));
            if field(old, "definition") != field(new, "definition")
                || inherited(old) != inherited(new)
            {
                let foreign = |value: Option<&Value>| {
                    value.and_then(|v| text(v, "type")) == Some("foreign key")
                };
                if old.is_some() && !inherited(old) {
                    let phase = if foreign(old) {
                        Phase::DropForeignKeys
                    } else {
                        Phase::DropConstraints
                    };
                    self.plain(phase, format!("{table} DROP CONSTRAINT {quoted}"));
                }
                if let Some(definition) = field(new, "definition").filter(|_| !inherited(new)) {
                    let phase = if foreign(new) {
                        Phase::AddForeignKeys
                    } else {
                        Phase::AddConstraints
                    };
                    self.plain(
                        phase,
                        format!("{table} ADD CONSTRAINT {quoted} {definition}"),
                    );
                }
            }
            if let Some(new) = new.filter(|new| !flag(new, "inherited")) {
                let old =
                    old.filter(|_| field(old, "definition") == field(Some(new), "definition"));
                self.comment(&format!("CONSTRAINT {quoted} ON {key}"), old, new);
            }
        }
        for (name, old, new) in paired_members(was, Some(now), "indexes") {
            if backing.contains(name) {
                continue;
            }
            let index = format!("{}.{}", schema, identifier(name));
            if field(old, "definition") != field(new, "definition") {
                if old.is_some() {
                    self.plain(Phase::DropAttachments, format!("DROP INDEX {index}"));
                }
                if let Some(definition) = field(new, "definition") {
                    // A partition's copy of its parent's index is made with the parent's.
                    let definition = if text(now, "partition_of").is_some() {
                        definition.replacen(" INDEX ", " INDEX IF NOT EXISTS ", 1)
                    } else {
                        definition.replacen(" ON ONLY ", " ON ", 1)
                    };
                    self.plain(Phase::CreateAttachments, definition);
                }
            }
            if let Some(new) = new {
                let kept =
                    old.filter(|_| field(old, "definition") == field(Some(new), "definition"));
                self.comment(&format!("INDEX {index}"), kept, new);
                let clustered = |value: Option<&Value>| value.is_some_and(|v| flag(v, "clustered"));
                if clustered(kept) != clustered(Some(new)) {
                    self.describe(format!("{table} CLUSTER ON {}", identifier(name)));
                }
            } else if old.is_some_and(|old| flag(old, "clustered")) {
                self.describe(format!("{table} SET WITHOUT CLUSTER"));
            }
        }
        for (name, old, new) in paired_members(was, Some(now), "triggers") {
            let quoted = identifier(name);
            let replaced = field(old, "definition") != field(new, "definition");
            if replaced {
                if old.is_some() {
                    self.plain(
                        Phase::DropAttachments,
                        format!("DROP TRIGGER {quoted} ON {key}"),
                    );
                }
                if let Some(definition) = field(new, "definition") {
                    self.plain(Phase::CreateAttachments, definition.to_owned());
                }
            }
            if let Some(new) = new {
                let kept = old.filter(|_| !replaced);
                if field(kept, "enabled") != field(Some(new), "enabled") {
                    let how = match field(Some(new), "enabled") {
                        Some("D") => "DISABLE TRIGGER",
                        Some("R") => "ENABLE REPLICA TRIGGER",
                        Some("A") => "ENABLE ALWAYS TRIGGER",
                        _ => "ENABLE TRIGGER",
                    };
                    self.describe(format!("{table} {how} {quoted}"));
                }
                self.comment(&format!("TRIGGER {quoted} ON {key}"), kept, new);
            }
        }
        for (name, old, new) in paired_members(was, Some(now), "policies") {
            if old == new {
                continue;
            }
            let quoted = identifier(name);
            if old.is_some() {
                self.plain(
                    Phase::DropAttachments,
                    format!("DROP POLICY {quoted} ON {key}"),
                );
            }
            if let Some(new) = new {
                let roles: Vec<&str> = new
                    .get("roles")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut sql = format!(
                    "CREATE POLICY {quoted} ON {key} AS {} FOR {} TO {}",
                    if flag(new, "permissive") {
                        "PERMISSIVE"
                    } else {
                        "RESTRICTIVE"
                    },
                    text(new, "command").unwrap_or("ALL"),
                    roles.join(", ")
                );
                if let Some(using) = text(new, "using") {
                    sql.push_str(&format!(" USING ({using})"));
                }
                if let Some(check) = text(new, "check") {
                    sql.push_str(&format!(" WITH CHECK ({check})"));
                }
                self.plain(Phase::CreateAttachments, sql);
            }
        }
        for (name, old, new) in paired_members(was, Some(now), "statistics") {
            if old == new {
                continue;
            }
            if old.is_some() {
                self.plain(Phase::DropAttachments, format!("DROP STATISTICS {name}"));
            }
            if let Some(definition) = new.and_then(Value::as_str) {
                self.plain(Phase::CreateAttachments, definition.to_owned());
            }
        }
        let was_flag = |field: &str| was.is_some_and(|was| flag(was, field));
        if was_flag("row_security") != flag(now, "row_security") {
            let how = if flag(now, "row_security") {
                "ENABLE"
            } else {
                "DISABLE"
            };
            self.describe(format!("{table} {how} ROW LEVEL SECURITY"));
        }
        if was_flag("force_row_security") != flag(now, "force_row_security") {
            let how = if flag(now, "force_row_security") {
                "FORCE"
            } else {
                "NO FORCE"
            };
            self.describe(format!("{table} {how} ROW LEVEL SECURITY"));
        }
        let acl_kind = match kind {
            "sequence" => Some('s'),
            "composite type" => None,
            _ => Some('r'),
        };
        if kind != "sequence" {
            self.describe_object(word, key, acl_kind, was, now);
        }
        if kind == "composite type" {
            return;
        }
        for (name, old, new) in paired_members(was, Some(now), "columns") {
            let Some(new) = new else { continue };
            let column = identifier(name);
            self.comment(&format!("COLUMN {key}.{column}"), old, new);
            // A column's ACL has no default: no lines, no grants.
            let lines = |value: Option<&Value>| grant_lines(value).unwrap_or_default();
            let (had, wanted) = (lines(old), lines(Some(new)));
            if had != wanted {
                let owner = text(now, "owner").unwrap_or(self.role).to_owned();
                self.grants(&format!("TABLE {key}"), Some(name), &had, &wanted, &owner);
            }
        }
    }

    /// COMMENT ON `target` when it differs from what `old` had (none: a new object).
    fn comment(&mut self, target: &str, old: Option<&Value>, new: &Value) {
        let (had, wanted) = (field(old, "comment"), text(new, "comment"));
        if had != wanted {
            self.describe(format!(
                "COMMENT ON {target} IS {}",
                wanted.map_or("NULL".to_owned(), literal)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_are_found_in_code_and_literals() {
        let names = qualified_names(
            r#"SELECT app.f(x) FROM "My App".t, app.users_archive WHERE nextval('app.s'::regclass) > 0"#,
        );
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["\"My App\".t", "app.f", "app.s", "app.users_archive"]
        );
    }

    #[test]
    fn widenings_keep_every_value() {
        assert!(widens("integer", "bigint"));
        assert!(!widens("bigint", "integer"));
        assert!(widens("character varying(10)", "character varying(20)"));
        assert!(!widens("character varying(20)", "character varying(10)"));
        assert!(widens("character varying(20)", "text"));
        assert!(widens("numeric(10,2)", "numeric(12,2)"));
        assert!(!widens("numeric(10,2)", "numeric(10,3)"));
        assert!(!widens("text", "integer"));
    }

    #[test]
    fn grant_lines_parse_back() {
        assert_eq!(
            parse_grant("\"a b\" SELECT WITH GRANT OPTION BY owner"),
            Some(Grant {
                grantee: "\"a b\"".into(),
                privilege: "SELECT".into(),
                grantable: true,
                grantor: "owner".into(),
            })
        );
    }

    #[test]
    fn dependents_come_after_what_they_mention() {
        let step = |sql: &str, provides: &str| Step {
            phase: Phase::CreateObjects,
            sql: sql.into(),
            provides: vec![provides.into()],
            mentions: sql.into(),
        };
        let ordered = in_dependency_order(
            vec![
                step("CREATE VIEW app.v AS SELECT * FROM app.t", "app.v"),
                step("CREATE TABLE app.t (x integer)", "app.t"),
            ],
            true,
        );
        assert_eq!(ordered[0].provides, ["app.t"]);
    }
}
