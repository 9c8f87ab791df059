//! Every call into PostgreSQL's C API, and so every `unsafe` block of the extension, each with
//! a `SAFETY` comment saying why it is sound. The modules above this one are safe Rust.

pub mod advisory;
pub mod backend;
pub mod catalog;
mod compat;
pub mod hook;
pub mod identity;
pub mod kept_query;
pub mod lock;
pub mod parser;
pub mod quote;
pub mod top_level;
pub mod transaction;

pub use compat::reserve_guc_prefix;
