-- CALL migrate.apply(): a commit after each migration; a failing one is rolled back alone,
-- recorded as failed, and raised.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT migrate.register('1', 'create mood', 'CREATE TYPE mood AS ENUM (''sad'')', 'DROP TYPE mood');
SELECT migrate.register('2', 'add happy', 'ALTER TYPE mood ADD VALUE ''happy''');
SELECT migrate.register('3', 'use happy', 'CREATE TABLE moods (m mood DEFAULT ''happy'')', 'DROP TABLE moods');
SELECT migrate.register('4', 'fails', 'INSERT INTO moods VALUES (''angry'')');

-- in one transaction, the new enum value cannot be used yet
SELECT migrate.up();
SELECT count(*) AS applied FROM migrate.status() WHERE state = 'applied';

CALL migrate.apply();
SELECT version, state FROM migrate.status();
SELECT version, event, detail FROM migrate.history() WHERE event = 'failed';

-- inside a transaction block it cannot commit, and works as up()
BEGIN;
CALL migrate.apply();
ROLLBACK;

DROP TABLE moods;
DROP TYPE mood;
DROP EXTENSION migrations;
