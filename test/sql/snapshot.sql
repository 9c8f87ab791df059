-- snapshot() describes the user schemas; up() stores one after the migrations it runs; drift()
-- names what changed by hand since, and verify() reports it.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT migrate.register('1', 'accounts', 'CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL)', 'DROP TABLE accounts');
SELECT migrate.register('2', 'accounts by owner', 'CREATE INDEX accounts_owner_idx ON accounts (owner)', 'DROP INDEX accounts_owner_idx');
SELECT * FROM migrate.drift();
SELECT migrate.up();
SELECT jsonb_pretty(migrate.snapshot() -> 'relations' -> 'public.accounts');
SELECT version, state, left(snapshot, 12) AS snapshot FROM migrate.status();
SELECT version, event, left(checksum, 12) AS checksum FROM migrate.history() WHERE event IN ('up', 'snapshot');

-- by hand, outside any migration
ALTER TABLE accounts ADD COLUMN note text;
DROP INDEX accounts_owner_idx;
SELECT path, change, now FROM migrate.drift();
SELECT version, problem, detail FROM migrate.verify();

-- two snapshots compared
SELECT path, change FROM migrate.snapshot_changes(
    (SELECT snapshot FROM migrate.snapshots ORDER BY id DESC LIMIT 1),
    migrate.snapshot(ARRAY['public']));

-- undone, and with snapshots off the newest one no longer describes what ran
ALTER TABLE accounts DROP COLUMN note;
CREATE INDEX accounts_owner_idx ON accounts (owner);
SELECT count(*) AS drift FROM migrate.drift();
SET migrate.snapshots = off;
SELECT migrate.register('3', 'balances', 'ALTER TABLE accounts ADD COLUMN balance numeric NOT NULL DEFAULT 0');
SELECT migrate.up();
SELECT * FROM migrate.drift();
RESET migrate.snapshots;
SELECT migrate.snapshot(ARRAY['no_such_schema']);

DROP TABLE accounts;
DROP EXTENSION migrations;
