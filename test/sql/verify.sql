-- verify() says what keeps a project from being exactly its registered migrations, all
-- applied; rehearse() tries each up and down and rolls it all back.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT migrate.register('1', 'create t', 'CREATE TABLE t (id int)', 'DROP TABLE t');
SELECT migrate.register('2', 'index t', 'CREATE INDEX t_idx ON t (id)', 'SELECT 1');
SELECT migrate.register('3', 'create u', 'CREATE TABLE u (id int)', 'DROP TABLE u');
SELECT migrate.register('4', 'no down', 'CREATE TABLE v (id int)', project => 'other');
SELECT version, name, up_ok, down_ok, reversible, detail FROM migrate.rehearse();
SELECT version, name, up_ok, down_ok, reversible, detail FROM migrate.rehearse(project => 'other');
SELECT to_regclass('t') AS t_after_rehearse;
SELECT version, event, detail FROM migrate.history() WHERE event = 'rehearse';

SELECT * FROM migrate.verify();
SELECT migrate.up();
SELECT migrate.up(project => 'other');
SELECT * FROM migrate.verify();

-- books that do not add up
UPDATE migrate.migrations SET up_sql = 'CREATE TABLE t (id bigint)' WHERE version = '1';
SELECT project, version, problem, detail FROM migrate.verify();

DROP TABLE t, u, v;
DROP EXTENSION migrations;
