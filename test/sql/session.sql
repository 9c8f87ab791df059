-- A first session, as the README shows it.
CREATE EXTENSION migrations;
SELECT migrate.register('20260115120000', 'create users',
    'CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)', 'DROP TABLE users');
SELECT migrate.register_script('20260116090000', 'users email index', E'-- migrate:up\nCREATE UNIQUE INDEX users_email_idx ON users (lower(email));\n\n-- migrate:down\nDROP INDEX users_email_idx;\n');
SELECT migrate.up();
SELECT version, name, state, applied_by FROM migrate.status();
SELECT migrate.up();
SELECT migrate.down();
SELECT version, event, role FROM migrate.history();
SELECT migrate.down();
DROP EXTENSION migrations;
