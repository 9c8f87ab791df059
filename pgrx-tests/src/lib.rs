//! Harness for tests of the `migrations` extension against a real PostgreSQL server.
//!
//! `scripts/test.sh` starts a throw-away cluster and passes it in `MIGRATIONS_TEST_PGHOST`
//! (socket directory) and `MIGRATIONS_TEST_PGPORT`; every test works in a database of its own,
//! so tests run in parallel.

mod catalog;
mod figures;
mod invariant;
mod park;
mod rng;
mod server;
mod sql;
mod wait;

pub use catalog::*;
pub use figures::*;
pub use invariant::*;
pub use park::*;
pub use rng::*;
pub use server::*;
pub use sql::*;
pub use wait::*;

pub use postgres::error::DbError;
pub use postgres::{Client, Config, NoTls};
