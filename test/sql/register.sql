-- Registering: the three outcomes, the dbmate layout, and every way a request is refused.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT migrate.register('20260115120000', 'create users',
    'CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)', 'DROP TABLE users');
SELECT migrate.register('20260115120000', 'create users',
    'CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)', 'DROP TABLE users');
SELECT migrate.register('20260115120000', 'create users',
    'CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text)', 'DROP TABLE users');
SELECT migrate.register_script('20260116090000', 'users email index', E'-- migrate:up\nCREATE UNIQUE INDEX users_email_idx ON users (lower(email));\n\n-- migrate:down\nDROP INDEX users_email_idx;\n');
SELECT version, event, role, detail FROM migrate.history() ORDER BY id;

-- NULLs, and values that break the rules
SELECT migrate.register(NULL, 'n', 'SELECT 1');
SELECT migrate.register('1', 'n', NULL);
SELECT migrate.register('1 2', 'n', 'SELECT 1');
SELECT migrate.register('1', '  ', 'SELECT 1');
SELECT migrate.register('1', 'n', 'SELECT 1', project => 'no spaces');
SELECT migrate.register('001', 'n', 'SELECT 1');
SELECT migrate.register('20260115120000.0', 'same place', 'SELECT 1');
SELECT migrate.register('0020260115120000', 'same place', 'SELECT 1');

-- bodies the parser refuses
SELECT migrate.register('2', 'empty', '-- nothing here');
SELECT migrate.register('2', 'typo', E'CREATE TABLE t (id int);\nCREAT TABLE u (id int);');
SELECT migrate.register('2', 'psql', E'\\set ON_ERROR_STOP on\nCREATE TABLE t (id int);');
SELECT migrate.register('2', 'empty down', 'CREATE TABLE t (id int)', '   ');
SET migrate.max_body_size = '1kB';
SELECT migrate.register('2', 'large', repeat('SELECT 1;', 200));
RESET migrate.max_body_size;

-- scripts
SELECT migrate.register_script('3', 'no marker', 'CREATE TABLE t (id int);');
SELECT migrate.register_script('3', 'up only', E'-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\n');
SELECT version, name, state FROM migrate.status() ORDER BY version;

-- a changed up body of an applied migration
SELECT migrate.up('20260115120000');
SELECT migrate.register('20260115120000', 'create users', 'CREATE TABLE users (id bigint)');

DROP TABLE users, t;
DROP EXTENSION migrations;
