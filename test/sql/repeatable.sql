-- Repeatable migrations: run again, after the versioned ones, whenever their body differs from
-- the one last run.
CREATE EXTENSION migrations;
\set VERBOSITY verbose
\set SHOW_CONTEXT never

SELECT migrate.register('1', 'accounts', 'CREATE TABLE accounts (id int PRIMARY KEY, balance numeric NOT NULL)');
SELECT migrate.register_repeatable('rich accounts', 'CREATE OR REPLACE VIEW rich AS SELECT id FROM accounts WHERE balance > 100');
SELECT step, version, name, sql FROM migrate.plan();
SELECT migrate.up();
SELECT migrate.register_repeatable('rich accounts', 'CREATE OR REPLACE VIEW rich AS SELECT id FROM accounts WHERE balance > 100');
SELECT migrate.up();
SELECT migrate.register_repeatable('rich accounts', 'CREATE OR REPLACE VIEW rich AS SELECT id FROM accounts WHERE balance > 1000');
SELECT version, name, state FROM migrate.status();
CALL migrate.apply();
SELECT version, event FROM migrate.history() ORDER BY id;

-- a failing one is recorded, and named by verify()
SELECT migrate.register_repeatable('grants', 'GRANT SELECT ON rich TO no_such_role');
CALL migrate.apply();
SELECT version, name, state FROM migrate.status();
SELECT * FROM migrate.verify();

-- Flyway's R__ files
SELECT migrate.register_files(ARRAY['R__grants.sql'], ARRAY['GRANT SELECT ON rich TO PUBLIC']);
SELECT migrate.up();
SELECT * FROM migrate.verify();

DROP VIEW rich;
DROP TABLE accounts;
DROP EXTENSION migrations;
