"""An application that migrates its database at start-up through the migrations extension.

It registers every migration it ships (an unchanged one is a no-op) and calls migrate.up(); any
number of instances may start at once. Connection settings come from the PG* environment.
"""

import pathlib

import psycopg

MIGRATIONS = pathlib.Path(__file__).resolve().parents[2] / "migrations"


def migrate(conn: psycopg.Connection) -> int:
    for path in sorted(MIGRATIONS.glob("*.sql")):
        version, name = path.stem.split("_", 1)
        conn.execute(
            "SELECT migrate.register_script(%s, %s, %s)",
            (version, name, path.read_text(encoding="utf-8")),
        )
    return conn.execute("SELECT migrate.up()").fetchone()[0]


def main() -> None:
    with psycopg.connect(autocommit=True) as conn:
        applied = migrate(conn)
    print(f"started: python instance applied {applied} migrations", flush=True)


if __name__ == "__main__":
    main()
