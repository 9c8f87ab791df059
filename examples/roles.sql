-- Two group roles for the migrations extension: grant them to login roles.
-- Run as a superuser (or the extension's owner) after CREATE EXTENSION migrations.

-- Read-only: sees what is applied and pending, the history, what verify() finds, what up()
-- or down() would run, and the catalog against its snapshots.
CREATE ROLE migrate_reader NOLOGIN;
GRANT USAGE ON SCHEMA migrate TO migrate_reader;
GRANT EXECUTE ON FUNCTION
    migrate.status(text),
    migrate.history(text),
    migrate.verify(text),
    migrate.plan(text, text),
    migrate.plan_down(integer, text),
    migrate.snapshot(text[]),
    migrate.snapshot_changes(jsonb, jsonb),
    migrate.drift(text),
    migrate.tenants(text)
TO migrate_reader;

-- Deployer: registers, applies and reverts migrations. It needs no rights on the tables:
-- the functions keep the books as the extension's owner. Bodies run with the rights of the
-- role that registered them, so the deployer also needs whatever its migrations do
-- (for example CREATE on the application's schema).
CREATE ROLE migrate_deployer NOLOGIN IN ROLE migrate_reader;
GRANT EXECUTE ON FUNCTION
    migrate.register(text, text, text, text, text, boolean),
    migrate.register_script(text, text, text, text),
    migrate.register_repeatable(text, text, text),
    migrate.register_files(text[], text[], text),
    migrate.files_unchanged(text, text),
    migrate.up(text, text),
    migrate.down(integer, text),
    migrate.down_to(text, text),
    migrate.baseline(text, text),
    migrate.rehearse(text, text),
    migrate.adopt(text, text),
    migrate.set_tenants(text[], text, integer, text),
    migrate.unset_tenants(text),
    migrate.diff(text, text[], boolean),
    migrate.declare(text, text, text, text, text[], boolean)
TO migrate_deployer;
GRANT EXECUTE ON PROCEDURE migrate.apply(text, text), migrate.revert(integer, text) TO migrate_deployer;

-- migrate.import_dir() reads files on the database server: grant it only together with
-- pg_read_server_files, to roles that may read any server file.
