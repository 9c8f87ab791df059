"""The writer's longest stall during an index build; driven by bench/lane.sh (PGHOST, PGPORT,
PGUSER set), which documents what it measures."""

import os
import statistics
import subprocess
import threading
import time

import psycopg

ROWS = int(os.environ["ROWS"])
RUNS = int(os.environ["RUNS"])


def connect(dbname):
    return psycopg.connect(dbname=dbname, autocommit=True)


def fresh_database():
    with connect("postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS lane WITH (FORCE)")
        admin.execute("CREATE DATABASE lane")
    with connect("lane") as db:
        db.execute("CREATE EXTENSION migrations")
        db.execute("CREATE TABLE big (id bigint PRIMARY KEY, x int NOT NULL, note text NOT NULL)")
        db.execute(
            "INSERT INTO big SELECT g, g %% 1000, md5(g::text) FROM generate_series(1, %s) g",
            (ROWS,),
        )
        db.execute("VACUUM ANALYZE big")
        db.execute(
            "SELECT migrate.register('1', 'concurrent', "
            "'CREATE INDEX CONCURRENTLY big_note_1 ON big (note)', transactional => false)"
        )
        db.execute(
            "SELECT migrate.register('2', 'plain', 'CREATE INDEX big_note_2 ON big (note)')"
        )


def writer(stop, started, commits):
    with connect("lane") as db:
        row = 0
        started.set()
        while not stop.is_set():
            row = (row + 7919) % ROWS + 1
            db.execute("UPDATE big SET x = x + 1 WHERE id = %s", (row,))
            commits.append(time.monotonic())


def stall_during(build):
    """(build seconds, longest stall seconds, commits during the build) while build() runs."""
    stop, started, commits = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=writer, args=(stop, started, commits))
    thread.start()
    started.wait()
    time.sleep(0.2)  # the writer's steady state before the build, not a synchronisation
    begun = time.monotonic()
    build()
    ended = time.monotonic()
    stop.set()
    thread.join()
    during = [at for at in commits if begun <= at <= ended]
    marks = [begun, *during, ended]
    longest = max(b - a for a, b in zip(marks, marks[1:]))
    return ended - begun, longest, len(during)


def apply_concurrently():
    with connect("lane") as db:
        db.execute("CALL migrate.apply('1')")


def psql_concurrently():
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "lane",
         "-c", "CREATE INDEX CONCURRENTLY big_note_3 ON big (note)"],
        check=True,
    )


def up_plain():
    with connect("lane") as db:
        db.execute("SELECT migrate.up('2')")


ways = {
    "CALL migrate.apply(), CREATE INDEX CONCURRENTLY": apply_concurrently,
    "psql, CREATE INDEX CONCURRENTLY": psql_concurrently,
    "SELECT migrate.up(), CREATE INDEX": up_plain,
}
results = {name: [] for name in ways}
for _ in range(RUNS):
    fresh_database()
    for name, build in ways.items():
        results[name].append(stall_during(build))

floor_stall = statistics.median(r[1] for r in results["psql, CREATE INDEX CONCURRENTLY"])
print(f"index build on {ROWS:,} rows, a writer updating one row per transaction; medians of {RUNS} runs")
print()
print("| build | duration, ms | writer's longest stall, ms | ratio to psql | writer commits during it |")
print("|---|---:|---:|---:|---:|")
for name, runs in results.items():
    duration = statistics.median(r[0] for r in runs) * 1000
    stall = statistics.median(r[1] for r in runs)
    commits = statistics.median(r[2] for r in runs)
    print(f"| {name} | {duration:.0f} | {stall * 1000:.1f} | {stall / floor_stall:.2f} | {commits:.0f} |")
