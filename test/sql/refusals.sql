-- What a body may not hold is refused at register, with the statement's place and a hint;
-- look-alikes that can run inside a transaction are registered.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT migrate.register('1', 'commit', E'CREATE TABLE t (id int);\nCOMMIT;');
SELECT migrate.register('1', 'savepoint', 'SAVEPOINT s');
SELECT migrate.register('1', 'concurrently', 'CREATE INDEX CONCURRENTLY t_idx ON t (id)');
SELECT migrate.register('1', 'drop concurrently', 'DROP INDEX CONCURRENTLY t_idx');
SELECT migrate.register('1', 'reindex concurrently', 'REINDEX (CONCURRENTLY) TABLE t');
SELECT migrate.register('1', 'detach concurrently', 'ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY');
SELECT migrate.register('1', 'vacuum', 'VACUUM t');
SELECT migrate.register('1', 'reindex schema', 'REINDEX SCHEMA public');
SELECT migrate.register('1', 'database', 'CREATE DATABASE other');
SELECT migrate.register('1', 'system', 'ALTER SYSTEM SET work_mem = ''8MB''');
SELECT migrate.register('1', 'copy in', 'COPY t FROM STDIN');
SELECT migrate.register('1', 'copy out', 'COPY t TO STDOUT');
SELECT migrate.register('1', 'discard', 'DISCARD ALL');
SELECT migrate.register('1', 'own books', 'DELETE FROM migrate.applied');
SELECT migrate.register('1', 'own extension', 'DROP EXTENSION migrations');
SELECT migrate.register('1', 'own function', 'CREATE OR REPLACE FUNCTION migrate.up() RETURNS int LANGUAGE sql AS ''SELECT 0''');
SELECT migrate.register('1', 'holdable cursor', 'DECLARE c CURSOR WITH HOLD FOR SELECT 1');
SELECT migrate.register('1', 'prepare', 'PREPARE p AS SELECT 1');
SELECT migrate.register('1', 'listen', 'LISTEN channel');
SELECT migrate.register('1', 'load', 'LOAD ''auto_explain''');
SELECT migrate.register('1', 'in the down body', 'CREATE TABLE t (id int)', 'VACUUM t');

-- look-alikes that run inside a transaction
SELECT migrate.register('1', 'allowed', $$
CREATE TABLE t (id int);
CREATE INDEX t_idx ON t (id);
REINDEX TABLE t;
ANALYZE t;
DECLARE c CURSOR FOR SELECT 1;
CLOSE c;
NOTIFY channel;
UNLISTEN channel;
COPY t TO '/dev/null';
CREATE TEMP TABLE scratch (id int) ON COMMIT DROP;
DROP TABLE scratch;
$$, 'DROP TABLE t');
SELECT migrate.up();

-- what a running body reaches through dynamic SQL is refused too
SELECT migrate.register('2', 'dynamic prepare', $$DO 'BEGIN EXECUTE ''PREPARE p AS SELECT 1''; END'$$);
SELECT migrate.up();
-- and what it leaves in the session fails it
SELECT migrate.register('3', 'cursor left open', 'DECLARE c CURSOR FOR SELECT 1', project => 'leftovers');
SELECT migrate.up(project => 'leftovers');
SELECT migrate.register('4', 'session lock', 'SELECT pg_advisory_lock(42)', project => 'locks');
SELECT migrate.up(project => 'locks');
SELECT count(*) AS advisory_locks_held FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();

-- a body stored by an earlier release that this one refuses
UPDATE migrate.migrations SET up_sql = 'VACUUM t' WHERE version = '2';
SELECT project, version, problem, detail FROM migrate.verify() WHERE problem = 'refused statement';

DROP TABLE t;
DROP EXTENSION migrations;
