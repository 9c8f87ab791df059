-- Applying and reverting: up, plan, status, down, down_to, baseline, and what stops them.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT migrate.register('1', 'create accounts', 'CREATE TABLE accounts (id int PRIMARY KEY)', 'DROP TABLE accounts');
SELECT migrate.register('2', 'add balance', 'ALTER TABLE accounts ADD COLUMN balance numeric NOT NULL DEFAULT 0', 'ALTER TABLE accounts DROP COLUMN balance');
SELECT migrate.register('10', 'seed', 'INSERT INTO accounts VALUES (1, 10), (2, 20)', 'DELETE FROM accounts');

SELECT * FROM migrate.plan();
SELECT * FROM migrate.plan('2');
SELECT migrate.up('2');
SELECT version, name, state, applied_by FROM migrate.status();
SELECT migrate.up();
SELECT migrate.up();
SELECT * FROM migrate.plan_down(2);
SELECT migrate.down();
SELECT migrate.down_to('1');
SELECT version, name, state FROM migrate.status();
SELECT version, event FROM migrate.history() ORDER BY id;

-- what stops a call
SELECT migrate.down(-1);
SELECT migrate.up('99');
SELECT migrate.down_to('99');
SELECT migrate.register('0', 'older', 'SELECT 1');
SELECT migrate.up();
SET migrate.allow_out_of_order = on;
SELECT * FROM migrate.plan();
RESET migrate.allow_out_of_order;
SELECT migrate.register('20', 'no down', 'CREATE TABLE t (id int)');
SET migrate.allow_out_of_order = on;
SELECT migrate.up();
RESET migrate.allow_out_of_order;
SELECT migrate.down(2);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT migrate.up();
ROLLBACK;

-- a failing body: the server's error, with the statement's place
SELECT migrate.register('30', 'bad cast', E'CREATE TABLE u (id int);\nINSERT INTO u VALUES (''x'');');
SELECT migrate.up();
SELECT version, state FROM migrate.status() WHERE version = '30';

-- baseline: marked applied without running
SELECT migrate.register('31', 'already there', 'CREATE TABLE already (id int)');
SELECT migrate.baseline('31');
SELECT version, state FROM migrate.status() WHERE version = '31';
SELECT to_regclass('already');

-- projects
SELECT migrate.register('1', 'plugin table', 'CREATE TABLE plugin_t (id int)', project => 'plugin');
SELECT migrate.up(project => 'plugin');
SELECT migrate.up('7', project => 'plugin');
SELECT project, version, state FROM migrate.status('plugin');
-- a long list in a message is cut after 20 items
SET client_min_messages = warning;
SELECT migrate.register_files(array_agg(format('%s_step.up.sql', i)), array_agg('SELECT 1;'::text), 'long') FROM generate_series(1, 25) i;
SELECT migrate.up(project => 'long');
RESET client_min_messages;
SELECT migrate.down(25, project => 'long');

DROP TABLE accounts, t, plugin_t;
DROP EXTENSION migrations;
