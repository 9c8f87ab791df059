//! An application that migrates its database at start-up through the migrations extension.
//!
//! Its migrations are compiled in. It registers every one (an unchanged one is a no-op) and
//! calls `migrate.up()`; any number of instances may start at once. Connection settings come
//! from the PG* environment.

use std::env;

use tokio_postgres::{Client, Config, NoTls};

/// One migration of examples/migrations, compiled in.
macro_rules! migration {
    ($version:literal, $name:literal) => {
        (
            $version,
            $name,
            include_str!(concat!(
                "../../../migrations/",
                $version,
                "_",
                $name,
                ".sql"
            )),
        )
    };
}

/// (version, name, script) of the migrations this application ships.
const MIGRATIONS: &[(&str, &str, &str)] = &[
    migration!("20260105090000", "create_customers"),
    migration!("20260105091500", "create_orders"),
    migration!("20260106100000", "index_orders_by_customer"),
    migration!("20260107110000", "touch_orders_updated_at"),
    migration!("20260108120000", "customer_totals_view"),
    migration!("20260109130000", "backfill_customer_tier"),
];

async fn migrate(client: &Client) -> Result<i32, tokio_postgres::Error> {
    for (version, name, script) in MIGRATIONS {
        client
            .execute(
                "SELECT migrate.register_script($1, $2, $3)",
                &[version, name, script],
            )
            .await?;
    }
    Ok(client.query_one("SELECT migrate.up()", &[]).await?.get(0))
}

fn config() -> Config {
    let mut config = Config::new();
    let host = env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    if host.starts_with('/') {
        config.host_path(host);
    } else {
        config.host(&host);
    }
    config
        .port(
            env::var("PGPORT")
                .ok()
                .and_then(|port| port.parse().ok())
                .unwrap_or(5432),
        )
        .user(env::var("PGUSER").unwrap_or_else(|_| "postgres".into()))
        .dbname(env::var("PGDATABASE").unwrap_or_else(|_| "postgres".into()));
    config
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (client, connection) = config().connect(NoTls).await?;
    let connection = tokio::spawn(connection);
    let applied = migrate(&client).await?;
    println!("started: rust instance applied {applied} migrations");
    drop(client);
    connection.await??;
    Ok(())
}
