-- Update from 0.3.0 to 0.4.0: projects that fan out over tenant schemas. set_tenants() gives a
-- project a set of tenant schemas, as a list or as a query; up(), apply(), down(), revert() and
-- baseline() then work in each tenant, with search_path set to it, and each tenant keeps a
-- history of its own: the history tables gain a tenant column, and status(), history() and
-- verify() a tenant column at the end.
\echo Use "ALTER EXTENSION migrations UPDATE TO '0.4.0'" to load this file. \quit

ALTER TABLE migrate.events ADD COLUMN tenant text NOT NULL DEFAULT '';
COMMENT ON COLUMN migrate.events.tenant IS 'the tenant schema an up, down or failed event happened in; empty for a project without tenants, and for register and update';
DROP INDEX migrate.events_migration_idx;
CREATE INDEX events_migration_idx ON migrate.events (project, version, tenant, id);

ALTER TABLE migrate.applied ADD COLUMN tenant text NOT NULL DEFAULT '';
COMMENT ON COLUMN migrate.applied.tenant IS 'the tenant schema it is applied in; empty for a project without tenants';
ALTER TABLE migrate.applied DROP CONSTRAINT applied_pkey;
ALTER TABLE migrate.applied ADD PRIMARY KEY (project, tenant, version);
-- Whether a migration is applied in any tenant, and the foreign key's checks.
CREATE INDEX applied_migration_idx ON migrate.applied (project, version);

ALTER TABLE migrate.repeatable_events ADD COLUMN tenant text NOT NULL DEFAULT '';
DROP INDEX migrate.repeatable_events_idx;
CREATE INDEX repeatable_events_idx ON migrate.repeatable_events (project, name, tenant, id);

CREATE TABLE migrate.tenant_sets (
    project       text        PRIMARY KEY,
    schemas       text[],
    query         text,
    canary        integer     NOT NULL DEFAULT 0 CHECK (canary OPERATOR(pg_catalog.>=) 0),
    configured_by text        NOT NULL,
    configured_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((schemas IS NULL) OPERATOR(pg_catalog.<>) (query IS NULL))
);
COMMENT ON TABLE migrate.tenant_sets IS 'projects that fan out over tenant schemas: each migration runs once in each tenant, with search_path set to it';
COMMENT ON COLUMN migrate.tenant_sets.query IS 'a query whose first column names the tenant schemas, in order; run read-only as configured_by, with search_path = pg_catalog, pg_temp';
COMMENT ON COLUMN migrate.tenant_sets.canary IS 'apply() runs the first canary tenants first, and stops before the rest when one of them fails';
SELECT pg_catalog.pg_extension_config_dump('migrate.tenant_sets', '');
REVOKE ALL ON TABLE migrate.tenant_sets FROM PUBLIC;

CREATE FUNCTION migrate.set_tenants(schemas text[] DEFAULT NULL, query text DEFAULT NULL, canary integer DEFAULT 0, project text DEFAULT 'default')
RETURNS integer
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'set_tenants_wrapper';

CREATE FUNCTION migrate.unset_tenants(project text DEFAULT 'default')
RETURNS boolean
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'unset_tenants_wrapper';

CREATE FUNCTION migrate.tenants(project text DEFAULT 'default')
RETURNS TABLE (tenant text, canary boolean)
STABLE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'tenants_wrapper';

REVOKE ALL ON FUNCTION migrate.set_tenants(text[], text, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.unset_tenants(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.tenants(text) FROM PUBLIC;

-- status(), history() and verify() gain a column, so they are dropped and created again (as in
-- sql/finalize.sql); the EXECUTE grants a reader role had on them are carried over.
SELECT pg_catalog.set_config('migrations.update_grants', COALESCE(pg_catalog.string_agg(
           pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s', p.oid::pg_catalog.regprocedure,
               a.grantee::pg_catalog.regrole::pg_catalog.text,
               CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), '; '), ''), true)
  FROM pg_catalog.pg_proc p
 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
 WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY['migrate.status(text)'::pg_catalog.regprocedure,
                                             'migrate.history(text)'::pg_catalog.regprocedure,
                                             'migrate.verify(text)'::pg_catalog.regprocedure])
   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
   AND a.grantee OPERATOR(pg_catalog.<>) 0;

DROP FUNCTION migrate.verify(text);
DROP FUNCTION migrate.history(text);
DROP FUNCTION migrate.status(text);

-- status(), history() and verify() run without JIT: short reads, whose estimates grow with the
-- tenants until compiling them would cost far more than running them.
CREATE FUNCTION migrate.status(project text DEFAULT NULL)
RETURNS TABLE (
    project     text,
    version     text,
    name        text,
    state       text,
    applied_at  timestamptz,
    applied_by  text,
    duration_ms double precision,
    checksum    text,
    tenant      text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH tenants AS MATERIALIZED (
        -- the tenants of each project that fans out over tenant schemas, resolved now, in order
        SELECT t.project, l.tenant, l.position
          FROM migrate.tenant_sets t
         CROSS JOIN LATERAL migrate.tenants(t.project) WITH ORDINALITY l(tenant, canary, position)
         WHERE $1 IS NULL OR t.project OPERATOR(pg_catalog.=) $1
    ), versioned AS (
        -- each registered migration in each history of its project: the project's own (tenant
        -- ''), or each tenant's; two scans, so that a project without tenants is read as before
        SELECT m.project, '' AS tenant, 0::bigint AS position, m.version, m.name, m.checksum,
               m.transactional, m.version_key, a.version IS NOT NULL AS applied, a.applied_at,
               a.applied_by, a.duration_ms, a.event_id
          FROM migrate.migrations m
          LEFT JOIN migrate.applied a
                 ON a.project OPERATOR(pg_catalog.=) m.project
                AND a.tenant OPERATOR(pg_catalog.=) ''
                AND a.version OPERATOR(pg_catalog.=) m.version
         WHERE ($1 IS NULL OR m.project OPERATOR(pg_catalog.=) $1)
           -- the projects with tenants read once (a hashed subplan), not once per migration
           AND m.project NOT IN (SELECT t.project FROM migrate.tenant_sets t)
        UNION ALL
        SELECT m.project, h.tenant, h.position, m.version, m.name, m.checksum,
               m.transactional, m.version_key, a.version IS NOT NULL, a.applied_at,
               a.applied_by, a.duration_ms, a.event_id
          FROM tenants h
          JOIN migrate.migrations m ON m.project OPERATOR(pg_catalog.=) h.project
          LEFT JOIN migrate.applied a
                 ON a.project OPERATOR(pg_catalog.=) m.project
                AND a.tenant OPERATOR(pg_catalog.=) h.tenant
                AND a.version OPERATOR(pg_catalog.=) m.version
    )
    SELECT s.project, s.version, s.name, s.state, s.applied_at, s.applied_by, s.duration_ms, s.checksum,
           NULLIF(s.tenant, '')
      FROM (
        SELECT v.project, v.tenant, v.position, v.version, v.name,
               CASE
                   WHEN v.applied THEN 'applied'
                   -- failed until applied, or until its body is replaced (an update event);
                   -- partial while some statements of a non-transactional one have run, which an
                   -- update (of the statements that have not) does not change
                   ELSE CASE (SELECT e.event FROM migrate.events e
                               WHERE e.project OPERATOR(pg_catalog.=) v.project
                                 AND e.version OPERATOR(pg_catalog.=) v.version
                                 AND e.tenant OPERATOR(pg_catalog.=) ANY (ARRAY['', v.tenant])
                                 AND (v.transactional OR e.event OPERATOR(pg_catalog.<>) 'update')
                               ORDER BY e.id DESC LIMIT 1)
                            WHEN 'failed' THEN 'failed'
                            WHEN 'started' THEN 'partial'
                            WHEN 'ran' THEN 'partial'
                            ELSE 'pending'
                        END
               END AS state,
               v.applied_at, v.applied_by, v.duration_ms, v.checksum,
               false AS repeatable, v.event_id AS applied_order, v.version_key AS sort_key
          FROM versioned v
        UNION ALL
        -- repeatable migrations, after the versioned ones: applied while the body last run is
        -- the registered one, failed while its last run with that body failed
        SELECT r.project, COALESCE(h.tenant, ''), COALESCE(h.position, 0), NULL, r.name,
               CASE
                   WHEN l.checksum OPERATOR(pg_catalog.=) r.checksum AND l.event OPERATOR(pg_catalog.=) 'reapply' THEN 'applied'
                   WHEN l.checksum OPERATOR(pg_catalog.=) r.checksum AND l.event OPERATOR(pg_catalog.=) 'failed' THEN 'failed'
                   ELSE 'pending'
               END,
               a.at, a.role, a.duration_ms, r.checksum,
               true, a.id, pg_catalog.convert_to(r.name, 'UTF8')
          FROM migrate.repeatables r
          LEFT JOIN tenants h ON h.project OPERATOR(pg_catalog.=) r.project
          LEFT JOIN LATERAL (SELECT e.event, e.checksum FROM migrate.repeatable_events e
                              WHERE e.project OPERATOR(pg_catalog.=) r.project
                                AND e.name OPERATOR(pg_catalog.=) r.name
                                AND e.tenant OPERATOR(pg_catalog.=) COALESCE(h.tenant, '')
                                AND e.event OPERATOR(pg_catalog.=) ANY ('{reapply,failed}')
                              ORDER BY e.id DESC LIMIT 1) l ON true
          LEFT JOIN LATERAL (SELECT e.id, e.at, e.role, e.duration_ms FROM migrate.repeatable_events e
                              WHERE e.project OPERATOR(pg_catalog.=) r.project
                                AND e.name OPERATOR(pg_catalog.=) r.name
                                AND e.tenant OPERATOR(pg_catalog.=) COALESCE(h.tenant, '')
                                AND e.event OPERATOR(pg_catalog.=) 'reapply'
                              ORDER BY e.id DESC LIMIT 1) a ON true
         WHERE ($1 IS NULL OR r.project OPERATOR(pg_catalog.=) $1)
           AND (h.project IS NOT NULL
                OR r.project NOT IN (SELECT t.project FROM migrate.tenant_sets t))
      ) s
     ORDER BY s.project, s.position, s.repeatable, s.applied_order NULLS LAST, s.sort_key
$$;
COMMENT ON FUNCTION migrate.status(text) IS
    'one row per registered migration of a project (NULL: all) in each of its histories (its own, or each tenant''s), applied ones in apply order, then pending ones in version order, then the repeatable ones (version NULL) by name';

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
    statement   integer,
    tenant      text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT h.id, h.project, h.version, h.event, h.role, h.at, h.duration_ms, h.checksum, h.detail, h.statement,
           NULLIF(h.tenant, '')
      FROM (
        SELECT e.id, e.project, e.version, e.event, e.role, e.at, e.duration_ms, e.checksum, e.detail, e.statement, e.tenant
          FROM migrate.events e
         WHERE $1 IS NULL OR e.project OPERATOR(pg_catalog.=) $1
        UNION ALL
        -- a repeatable migration's events name it where a versioned one's give the version
        SELECT e.id, e.project, e.name, 'repeatable ' OPERATOR(pg_catalog.||) e.event, e.role, e.at,
               e.duration_ms, e.checksum, e.detail, NULL, e.tenant
          FROM migrate.repeatable_events e
         WHERE $1 IS NULL OR e.project OPERATOR(pg_catalog.=) $1
      ) h
     ORDER BY h.id
$$;
COMMENT ON FUNCTION migrate.history(text) IS
    'the event log of a project (NULL: all), oldest first; statement numbers the statements of a non-transactional migration; tenant names the tenant schema an event happened in; a repeatable migration''s events give its name as version';

CREATE FUNCTION migrate.verify(project text DEFAULT NULL)
RETURNS TABLE (
    project text,
    version text,
    problem text,
    detail  text,
    tenant  text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    WITH bodies AS (
        SELECT m.project, m.version, m.name, m.up_sql, m.down_sql, m.version_key, m.checksum, m.transactional,
               pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(m.up_sql, 'UTF8')), 'hex') AS body_checksum
          FROM migrate.migrations m
         WHERE $1 IS NULL OR m.project OPERATOR(pg_catalog.=) $1
    ), registered AS (
        -- each migration in each of its histories (see status())
        SELECT b.project, s.tenant, COALESCE(s.tenant, '') AS history, b.version, b.version_key, b.checksum,
               a.version IS NOT NULL AS applied, a.checksum AS applied_checksum, a.event_id,
               (SELECT e.event FROM migrate.events e
                 WHERE e.project OPERATOR(pg_catalog.=) b.project
                   AND e.version OPERATOR(pg_catalog.=) b.version
                   AND e.tenant OPERATOR(pg_catalog.=) COALESCE(s.tenant, '')
                   AND e.event OPERATOR(pg_catalog.=) ANY ('{up,down,baseline}')
                 ORDER BY e.id DESC LIMIT 1) AS last_run,
               -- the state rule is status()'s alone
               s.state
          FROM migrate.status($1) s
          JOIN bodies b
            ON b.project OPERATOR(pg_catalog.=) s.project
           AND b.version OPERATOR(pg_catalog.=) s.version
          LEFT JOIN migrate.applied a
                 ON a.project OPERATOR(pg_catalog.=) b.project
                AND a.tenant OPERATOR(pg_catalog.=) COALESCE(s.tenant, '')
                AND a.version OPERATOR(pg_catalog.=) b.version
    ), problems AS (
        -- a body stored before this release refused one of its statements
        SELECT b.project, NULL::text AS tenant, b.version, b.version_key, 0 AS rank, 'refused statement' AS problem, f.refusal AS detail
          FROM bodies b
         CROSS JOIN LATERAL (VALUES (migrate.body_refusal(b.project, b.version, b.name, b.up_sql, 'up', b.transactional)),
                                    (migrate.body_refusal(b.project, b.version, b.name, b.down_sql, 'down', b.transactional))) f(refusal)
         WHERE f.refusal IS NOT NULL
        UNION ALL
        SELECT b.project, NULL, b.version, b.version_key, 1, 'body changed',
               pg_catalog.format('the stored up body has checksum %s, registered as %s', b.body_checksum, b.checksum)
          FROM bodies b WHERE b.body_checksum OPERATOR(pg_catalog.<>) b.checksum
        UNION ALL
        SELECT r.project, r.tenant, r.version, r.version_key, 2, 'checksum mismatch',
               pg_catalog.format('applied with checksum %s, registered with %s', r.applied_checksum, r.checksum)
          FROM registered r WHERE r.applied AND r.applied_checksum OPERATOR(pg_catalog.<>) r.checksum
        UNION ALL
        SELECT r.project, r.tenant, r.version, r.version_key, 3, 'history mismatch',
               CASE WHEN r.applied THEN 'applied, but the history does not show it applied'
                    ELSE 'not applied, but the history shows it applied' END
          FROM registered r
         WHERE r.applied OPERATOR(pg_catalog.<>) COALESCE(r.last_run OPERATOR(pg_catalog.=) ANY ('{up,baseline}'), false)
            OR (r.applied AND NOT EXISTS (
                   SELECT FROM migrate.events e
                    WHERE e.id OPERATOR(pg_catalog.=) r.event_id
                      AND e.project OPERATOR(pg_catalog.=) r.project
                      AND e.version OPERATOR(pg_catalog.=) r.version
                      AND e.tenant OPERATOR(pg_catalog.=) r.history
                      AND e.event OPERATOR(pg_catalog.=) ANY ('{up,baseline}')))
        UNION ALL
        SELECT r.project, r.tenant, r.version, r.version_key, 4,
               CASE WHEN r.state OPERATOR(pg_catalog.=) ANY ('{failed,partial}') THEN r.state ELSE 'pending' END,
               CASE WHEN EXISTS (SELECT FROM registered n
                                  WHERE n.project OPERATOR(pg_catalog.=) r.project
                                    AND n.history OPERATOR(pg_catalog.=) r.history AND n.applied
                                    AND n.version_key OPERATOR(pg_catalog.>) r.version_key)
                    THEN 'older than an applied migration: out of order'
                    ELSE 'not applied yet' END
          FROM registered r WHERE NOT r.applied
        UNION ALL
        SELECT s.project, s.tenant, s.name, NULL, 5, 'repeatable ' OPERATOR(pg_catalog.||) s.state,
               'repeatable migration whose registered body has not run successfully'
          FROM migrate.status($1) s
         WHERE s.version IS NULL AND s.state OPERATOR(pg_catalog.<>) 'applied'
    )
    SELECT p.project, p.version, p.problem, p.detail, p.tenant
      FROM problems p
     ORDER BY p.project, p.tenant NULLS FIRST, p.version_key, p.rank
$$;
COMMENT ON FUNCTION migrate.verify(text) IS
    'what keeps a project (NULL: all) from being exactly its registered migrations, all applied (in each tenant, for one that fans out over tenant schemas): no rows when it is';

REVOKE ALL ON FUNCTION migrate.status(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.history(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.verify(text) FROM PUBLIC;

DO $$
DECLARE
    grants text := pg_catalog.current_setting('migrations.update_grants');
BEGIN
    IF grants OPERATOR(pg_catalog.<>) '' THEN
        EXECUTE grants;
    END IF;
END
$$;
