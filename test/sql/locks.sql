-- Waiting for locks: a body that cannot get its table lock in time is tried again and then
-- named; a call that cannot get the runner lock in time says who holds it. The other session
-- is a dblink connection that holds the lock throughout.
CREATE EXTENSION migrations;
CREATE EXTENSION dblink;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

CREATE TABLE busy (id int);
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', 'LOCK TABLE busy IN ACCESS SHARE MODE');
SELECT migrate.register('1', 'alter busy', 'ALTER TABLE busy ADD COLUMN note text');
SET migrate.lock_timeout = '200ms';
SET migrate.lock_retries = 2;
SELECT migrate.up();
SELECT dblink_exec('other', 'COMMIT');
SELECT migrate.up();
RESET migrate.lock_timeout;
RESET migrate.lock_retries;

-- the runner lock, held by the other session
SELECT migrate.register('2', 'later', 'SELECT 1');
SELECT dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', 'SELECT pg_advisory_xact_lock(7883946363647714560)::text') AS t(locked text);
SET migrate.runner_wait = '200ms';
SELECT migrate.up();
SET lock_timeout = '100ms';
SELECT migrate.up();
RESET lock_timeout;
SELECT version, state FROM migrate.status();
SELECT dblink_exec('other', 'COMMIT');
SELECT migrate.up();
SELECT dblink_disconnect('other');

DROP TABLE busy;
DROP EXTENSION dblink;
DROP EXTENSION migrations;
