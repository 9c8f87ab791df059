-- Update from 0.2.2 to 0.3.0: the non-transactional lane, and repeatable migrations. A
-- migration registered with transactional => false (or placed from files whose tool's
-- directive says so) runs through CALL migrate.apply() one statement at a time, each at top
-- level and committed, with a journal entry per statement; CALL migrate.revert() reverts the same way. plan() and
-- plan_down() say which lane each step takes; history() says which statement an event is
-- about; status() calls a migration some of whose statements ran "partial". A repeatable
-- migration (register_repeatable(), Flyway's R__ files) runs again after the versioned ones
-- whenever its body changed; status(), history() and verify() show them.
\echo Use "ALTER EXTENSION migrations UPDATE TO '0.3.0'" to load this file. \quit

ALTER TABLE migrate.migrations ADD COLUMN transactional boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN migrate.migrations.transactional IS 'false: its statements run one by one, each at top level and committed, by CALL migrate.apply()';
ALTER TABLE migrate.events ADD COLUMN statement integer;
COMMENT ON COLUMN migrate.events.statement IS 'the statement (1-based) of a non-transactional migration the event is about';
COMMENT ON TABLE migrate.events IS 'append-only history: register, update, up, down, failed, baseline, adopt, rehearse, and started and ran for each statement of a non-transactional migration';

CREATE TABLE migrate.repeatables (
    project       text        NOT NULL,
    name          text        NOT NULL,
    body          text        NOT NULL,
    checksum      text        NOT NULL,
    registered_by text        NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (project, name)
);
COMMENT ON TABLE migrate.repeatables IS 'repeatable migrations (views, functions, grants): run again, after the versioned ones, whenever their body differs from the one last run';
COMMENT ON COLUMN migrate.repeatables.checksum IS 'SHA-256 (hex) of body';

CREATE TABLE migrate.repeatable_events (
    id          bigint      NOT NULL DEFAULT pg_catalog.nextval('migrate.events_id_seq') PRIMARY KEY,
    project     text        NOT NULL,
    name        text        NOT NULL,
    event       text        NOT NULL,
    role        text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    duration_ms double precision,
    checksum    text,
    detail      text
);
COMMENT ON TABLE migrate.repeatable_events IS 'append-only history of repeatable migrations: register, update, reapply, failed; numbered with migrate.events';
CREATE INDEX repeatable_events_idx ON migrate.repeatable_events (project, name, id);

SELECT pg_catalog.pg_extension_config_dump('migrate.repeatables', '');
SELECT pg_catalog.pg_extension_config_dump('migrate.repeatable_events', '');
REVOKE ALL ON TABLE migrate.repeatables, migrate.repeatable_events FROM PUBLIC;

CREATE FUNCTION migrate.register_repeatable(name text, body text, project text DEFAULT 'default')
RETURNS text
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'register_repeatable_wrapper';
REVOKE ALL ON FUNCTION migrate.register_repeatable(text, text, text) FROM PUBLIC;

-- register(), plan(), plan_down() and history() change their signatures, so they are dropped
-- and created again; the EXECUTE grants a deployer or reader role had on them are carried
-- over to the new ones (nothing is granted to PUBLIC, here as everywhere).
SELECT pg_catalog.set_config('migrations.update_grants', COALESCE(pg_catalog.string_agg(
           pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s', f.replacement,
               a.grantee::pg_catalog.regrole::pg_catalog.text,
               CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), '; '), ''), true)
  FROM (VALUES ('migrate.register(text, text, text, text, text)'::pg_catalog.regprocedure,
                'migrate.register(text, text, text, text, text, boolean)'),
               ('migrate.plan(text, text)'::pg_catalog.regprocedure, 'migrate.plan(text, text)'),
               ('migrate.plan_down(integer, text)'::pg_catalog.regprocedure, 'migrate.plan_down(integer, text)'),
               ('migrate.history(text)'::pg_catalog.regprocedure, 'migrate.history(text)')) f(replaced, replacement)
  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) f.replaced
 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
 WHERE a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
   AND a.grantee OPERATOR(pg_catalog.<>) 0;

DROP FUNCTION migrate.register(text, text, text, text, text);
CREATE FUNCTION migrate.register(
    version text, name text, up_sql text, down_sql text DEFAULT NULL,
    project text DEFAULT 'default', transactional boolean DEFAULT true)
RETURNS text
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'register_with_lane_wrapper';

DROP FUNCTION migrate.plan(text, text);
CREATE FUNCTION migrate.plan(target text DEFAULT NULL, project text DEFAULT 'default')
RETURNS TABLE (step integer, direction text, version text, name text, sql text, transactional boolean)
STABLE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'plan_with_lanes_wrapper';

DROP FUNCTION migrate.plan_down(integer, text);
CREATE FUNCTION migrate.plan_down(steps integer DEFAULT 1, project text DEFAULT 'default')
RETURNS TABLE (step integer, direction text, version text, name text, sql text, transactional boolean)
STABLE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'plan_down_with_lanes_wrapper';

DROP FUNCTION migrate.body_refusal(text, text, text, text, text);
CREATE FUNCTION migrate.body_refusal(project text, version text, name text, body text, direction text, transactional boolean)
RETURNS text
STRICT STABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'body_refusal_in_lane_wrapper';

CREATE PROCEDURE migrate.revert(steps integer DEFAULT 1, project text DEFAULT 'default')
LANGUAGE c AS 'MODULE_PATHNAME', 'revert_wrapper';

-- As in sql/finalize.sql.
CREATE OR REPLACE FUNCTION migrate.status(project text DEFAULT NULL)
RETURNS TABLE (
    project     text,
    version     text,
    name        text,
    state       text,
    applied_at  timestamptz,
    applied_by  text,
    duration_ms double precision,
    checksum    text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.project, s.version, s.name, s.state, s.applied_at, s.applied_by, s.duration_ms, s.checksum
      FROM (
        SELECT m.project, m.version, m.name,
               CASE
                   WHEN a.version IS NOT NULL THEN 'applied'
                   -- failed until applied, or until its body is replaced (an update event);
                   -- partial while some statements of a non-transactional one have run, which an
                   -- update (of the statements that have not) does not change
                   ELSE CASE (SELECT e.event FROM migrate.events e
                               WHERE e.project OPERATOR(pg_catalog.=) m.project
                                 AND e.version OPERATOR(pg_catalog.=) m.version
                                 AND (m.transactional OR e.event OPERATOR(pg_catalog.<>) 'update')
                               ORDER BY e.id DESC LIMIT 1)
                            WHEN 'failed' THEN 'failed'
                            WHEN 'started' THEN 'partial'
                            WHEN 'ran' THEN 'partial'
                            ELSE 'pending'
                        END
               END AS state,
               a.applied_at, a.applied_by, a.duration_ms, m.checksum,
               false AS repeatable, a.event_id AS applied_order, m.version_key AS sort_key
          FROM migrate.migrations m
          LEFT JOIN migrate.applied a
                 ON a.project OPERATOR(pg_catalog.=) m.project
                AND a.version OPERATOR(pg_catalog.=) m.version
         WHERE $1 IS NULL OR m.project OPERATOR(pg_catalog.=) $1
        UNION ALL
        -- repeatable migrations, after the versioned ones: applied while the body last run is
        -- the registered one, failed while its last run with that body failed
        SELECT r.project, NULL, r.name,
               CASE
                   WHEN l.checksum OPERATOR(pg_catalog.=) r.checksum AND l.event OPERATOR(pg_catalog.=) 'reapply' THEN 'applied'
                   WHEN l.checksum OPERATOR(pg_catalog.=) r.checksum AND l.event OPERATOR(pg_catalog.=) 'failed' THEN 'failed'
                   ELSE 'pending'
               END,
               a.at, a.role, a.duration_ms, r.checksum,
               true, a.id, pg_catalog.convert_to(r.name, 'UTF8')
          FROM migrate.repeatables r
          LEFT JOIN LATERAL (SELECT e.event, e.checksum FROM migrate.repeatable_events e
                              WHERE e.project OPERATOR(pg_catalog.=) r.project
                                AND e.name OPERATOR(pg_catalog.=) r.name
                                AND e.event OPERATOR(pg_catalog.=) ANY ('{reapply,failed}')
                              ORDER BY e.id DESC LIMIT 1) l ON true
          LEFT JOIN LATERAL (SELECT e.id, e.at, e.role, e.duration_ms FROM migrate.repeatable_events e
                              WHERE e.project OPERATOR(pg_catalog.=) r.project
                                AND e.name OPERATOR(pg_catalog.=) r.name
                                AND e.event OPERATOR(pg_catalog.=) 'reapply'
                              ORDER BY e.id DESC LIMIT 1) a ON true
         WHERE $1 IS NULL OR r.project OPERATOR(pg_catalog.=) $1
      ) s
     ORDER BY s.project, s.repeatable, s.applied_order NULLS LAST, s.sort_key
$$;
COMMENT ON FUNCTION migrate.status(text) IS
    'one row per registered migration of a project (NULL: all), applied ones in apply order, then pending ones in version order, then the repeatable ones (version NULL) by name';

DROP FUNCTION migrate.history(text);
CREATE FUNCTION migrate.history(project text DEFAULT NULL)
RETURNS TABLE (
    id          bigint,
    project     text,
    version     text,
    event       text,
    role        text,
    at          timestamptz,
    duration_ms double precision,
    checksum    text,
    detail      text,
    statement   integer
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.id, h.project, h.version, h.event, h.role, h.at, h.duration_ms, h.checksum, h.detail, h.statement
      FROM (
        SELECT e.id, e.project, e.version, e.event, e.role, e.at, e.duration_ms, e.checksum, e.detail, e.statement
          FROM migrate.events e
         WHERE $1 IS NULL OR e.project OPERATOR(pg_catalog.=) $1
        UNION ALL
        -- a repeatable migration's events name it where a versioned one's give the version
        SELECT e.id, e.project, e.name, 'repeatable ' OPERATOR(pg_catalog.||) e.event, e.role, e.at,
               e.duration_ms, e.checksum, e.detail, NULL
          FROM migrate.repeatable_events e
         WHERE $1 IS NULL OR e.project OPERATOR(pg_catalog.=) $1
      ) h
     ORDER BY h.id
$$;
COMMENT ON FUNCTION migrate.history(text) IS
    'the event log of a project (NULL: all), oldest first; statement numbers the statements of a non-transactional migration; a repeatable migration''s events give its name as version';

CREATE OR REPLACE FUNCTION migrate.verify(project text DEFAULT NULL)
RETURNS TABLE (
    project text,
    version text,
    problem text,
    detail  text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH registered AS (
        SELECT m.project, m.version, m.name, m.up_sql, m.down_sql, m.version_key, m.checksum, m.transactional,
               pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(m.up_sql, 'UTF8')), 'hex') AS body_checksum,
               a.version IS NOT NULL AS applied, a.checksum AS applied_checksum, a.event_id,
               (SELECT e.event FROM migrate.events e
                 WHERE e.project OPERATOR(pg_catalog.=) m.project
                   AND e.version OPERATOR(pg_catalog.=) m.version
                   AND e.event OPERATOR(pg_catalog.=) ANY ('{up,down,baseline}')
                 ORDER BY e.id DESC LIMIT 1) AS last_run,
               -- the state rule is status()'s alone
               s.state
          FROM migrate.migrations m
          LEFT JOIN migrate.applied a
                 ON a.project OPERATOR(pg_catalog.=) m.project
                AND a.version OPERATOR(pg_catalog.=) m.version
          JOIN migrate.status($1) s
            ON s.project OPERATOR(pg_catalog.=) m.project
           AND s.version OPERATOR(pg_catalog.=) m.version
         WHERE $1 IS NULL OR m.project OPERATOR(pg_catalog.=) $1
    ), problems AS (
        -- a body stored before this release refused one of its statements
        SELECT r.project, r.version, r.version_key, 0 AS rank, 'refused statement' AS problem, b.refusal AS detail
          FROM registered r
         CROSS JOIN LATERAL (VALUES (migrate.body_refusal(r.project, r.version, r.name, r.up_sql, 'up', r.transactional)),
                                    (migrate.body_refusal(r.project, r.version, r.name, r.down_sql, 'down', r.transactional))) b(refusal)
         WHERE b.refusal IS NOT NULL
        UNION ALL
        SELECT r.project, r.version, r.version_key, 1, 'body changed',
               pg_catalog.format('the stored up body has checksum %s, registered as %s', r.body_checksum, r.checksum)
          FROM registered r WHERE r.body_checksum OPERATOR(pg_catalog.<>) r.checksum
        UNION ALL
        SELECT r.project, r.version, r.version_key, 2, 'checksum mismatch',
               pg_catalog.format('applied with checksum %s, registered with %s', r.applied_checksum, r.checksum)
          FROM registered r WHERE r.applied AND r.applied_checksum OPERATOR(pg_catalog.<>) r.checksum
        UNION ALL
        SELECT r.project, r.version, r.version_key, 3, 'history mismatch',
               CASE WHEN r.applied THEN 'applied, but the history does not show it applied'
                    ELSE 'not applied, but the history shows it applied' END
          FROM registered r
         WHERE r.applied OPERATOR(pg_catalog.<>) COALESCE(r.last_run OPERATOR(pg_catalog.=) ANY ('{up,baseline}'), false)
            OR (r.applied AND NOT EXISTS (
                   SELECT FROM migrate.events e
                    WHERE e.id OPERATOR(pg_catalog.=) r.event_id
                      AND e.project OPERATOR(pg_catalog.=) r.project
                      AND e.version OPERATOR(pg_catalog.=) r.version
                      AND e.event OPERATOR(pg_catalog.=) ANY ('{up,baseline}')))
        UNION ALL
        SELECT r.project, r.version, r.version_key, 4,
               CASE WHEN r.state OPERATOR(pg_catalog.=) ANY ('{failed,partial}') THEN r.state ELSE 'pending' END,
               CASE WHEN EXISTS (SELECT FROM registered n
                                  WHERE n.project OPERATOR(pg_catalog.=) r.project AND n.applied
                                    AND n.version_key OPERATOR(pg_catalog.>) r.version_key)
                    THEN 'older than an applied migration: out of order'
                    ELSE 'not applied yet' END
          FROM registered r WHERE NOT r.applied
        UNION ALL
        SELECT s.project, s.name, NULL, 5, 'repeatable ' OPERATOR(pg_catalog.||) s.state,
               'repeatable migration whose registered body has not run successfully'
          FROM migrate.status($1) s
         WHERE s.version IS NULL AND s.state OPERATOR(pg_catalog.<>) 'applied'
    )
    SELECT p.project, p.version, p.problem, p.detail
      FROM problems p
     ORDER BY p.project, p.version_key, p.rank
$$;
COMMENT ON FUNCTION migrate.verify(text) IS
    'what keeps a project (NULL: all) from being exactly its registered migrations, all applied: no rows when it is';

REVOKE ALL ON FUNCTION migrate.register(text, text, text, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.plan(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.plan_down(integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.body_refusal(text, text, text, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON PROCEDURE migrate.revert(integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.history(text) FROM PUBLIC;

DO $$
DECLARE
    grants text := pg_catalog.current_setting('migrations.update_grants');
BEGIN
    IF grants OPERATOR(pg_catalog.<>) '' THEN
        EXECUTE grants;
    END IF;
END
$$;
