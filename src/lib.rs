//! `migrations`: PostgreSQL as its own schema-migration runner. Migrations and their history
//! live in tables of schema `migrate`; `SELECT migrate.up()` applies what is pending.

// pgrx keeps a SQLSTATE only for `Result<_, ErrorReport>`, a large type it defines; errors are
// the cold path.
#![allow(clippy::result_large_err)]
// Every `unsafe` block (all of them under `postgres/`) says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

mod adopt;
mod api;
mod call;
mod declare;
mod earlier;
mod error;
mod files;
mod gucs;
mod leftovers;
mod parse;
mod place;
mod plan;
mod postgres;
mod refuse;
mod registry;
mod rehearse;
mod runner;
mod script;
mod status;
mod store;
mod tenants;
mod text;
mod version;

#[cfg(any(test, feature = "pg_test"))]
mod tests;

::pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/bootstrap.sql", bootstrap);
pgrx::extension_sql_file!("../sql/snapshot.sql");
pgrx::extension_sql_file!("../sql/finalize.sql", finalize);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    leftovers::init();
    postgres::backend::at_transaction_end(store::forget_tables);
}

/// Hooks of the `#[pg_test]` harness.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
