-- Migration files, as a client sends them (register_files) in every peer's layout, and what
-- cannot be placed; import_dir and adopt refuse what they cannot do.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT migrate.register_files(
    ARRAY['20260101000000_create_a.sql',
          '20260102000000_create_b.up.sql', '20260102000000_create_b.down.sql',
          '2026-01-03-000000_create_c/up.sql', '2026-01-03-000000_create_c/down.sql',
          'V4__create_d.sql', 'U4__create_d.sql'],
    ARRAY[E'-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n',
          'CREATE TABLE b (id int);', 'DROP TABLE b;',
          'CREATE TABLE c (id int);', 'DROP TABLE c;',
          'CREATE TABLE d (id int);', 'DROP TABLE d;'],
    project => 'layouts');
SELECT version, name FROM migrate.status('layouts');
SELECT migrate.register_files(ARRAY['20260101000000_create_a.sql'],
    ARRAY[E'-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n'], project => 'layouts');

SELECT migrate.register_files(ARRAY['notes.txt'], ARRAY['hello']);
SELECT migrate.register_files(ARRAY['1_a.up.sql'], ARRAY['x', 'y']);
SELECT migrate.register_files(ARRAY['1_a.down.sql'], ARRAY['DROP TABLE a;']);
SELECT migrate.register_files(ARRAY['V5__create_e.sql', 'B5__baseline.sql'], ARRAY['CREATE TABLE e (id int);', 'SELECT 1;']);
SELECT migrate.import_dir('relative/path');
SELECT migrate.import_dir('/nonexistent/migrations');
SELECT migrate.adopt('liquibase');
SELECT migrate.adopt('dbmate');

-- adopt: what another tool applied is marked applied, without running it
CREATE TABLE schema_migrations (version text PRIMARY KEY);
INSERT INTO schema_migrations VALUES ('20260101000000'), ('20260102000000'), ('20251201000000');
SELECT migrate.adopt('dbmate', project => 'layouts');
SELECT version, state FROM migrate.status('layouts');

DROP TABLE schema_migrations;
DROP EXTENSION migrations;
