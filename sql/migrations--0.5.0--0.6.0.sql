-- Update from 0.5.0 to 0.6.0: a start-up that ships nothing when nothing changed.
-- register_files() remembers a digest of the files it registered (migrate.file_sets), and
-- files_unchanged() compares a client's sha256sum listing with it. status() finds the snapshot
-- of each migration with one join instead of a lookup per row.
\echo Use "ALTER EXTENSION migrations UPDATE TO '0.6.0'" to load this file. \quit

CREATE TABLE migrate.file_sets (
    project     text    PRIMARY KEY,
    digest      text    NOT NULL,
    migrations  integer NOT NULL,
    repeatables integer NOT NULL,
    files       integer NOT NULL
);
COMMENT ON TABLE migrate.file_sets IS 'the files register_files() last registered for each project, while nothing registered has changed since: files_unchanged() compares a client''s listing with it; every change to what a project has registered deletes its row';
COMMENT ON COLUMN migrate.file_sets.digest IS 'SHA-256 (hex) of the files'' sha256sum listing, its lines in byte order: per file, the SHA-256 (hex) of its content, two spaces, its path and a newline';
REVOKE ALL ON TABLE migrate.file_sets FROM PUBLIC;

CREATE FUNCTION migrate.files_unchanged(sha256sums text, project text DEFAULT 'default')
RETURNS boolean
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'files_unchanged_wrapper';
REVOKE ALL ON FUNCTION migrate.files_unchanged(text, text) FROM PUBLIC;

-- status() keeps its signature, so its grants stay.
CREATE OR REPLACE FUNCTION migrate.status(project text DEFAULT NULL)
RETURNS TABLE (
    project     text,
    version     text,
    name        text,
    state       text,
    applied_at  timestamptz,
    applied_by  text,
    duration_ms double precision,
    checksum    text,
    tenant      text,
    snapshot    text
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
    ), stored AS MATERIALIZED (
        -- the catalogs stored after migrations (see migrate.snapshots), a few per migration at
        -- most, in id order: joined once, not looked up once per row
        SELECT k.project, k.version, pg_catalog.array_agg(k.id ORDER BY k.id) AS ids,
               pg_catalog.array_agg(k.hash ORDER BY k.id) AS hashes
          FROM migrate.snapshots k
         WHERE $1 IS NULL OR k.project OPERATOR(pg_catalog.=) $1
         GROUP BY k.project, k.version
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
           NULLIF(s.tenant, ''),
           -- the catalog stored right after the migration last ran: the first one stored after it
           CASE WHEN k.project IS NOT NULL THEN
               (SELECT x.hash FROM ROWS FROM (pg_catalog.unnest(k.ids), pg_catalog.unnest(k.hashes)) x(id, hash)
                 WHERE x.id OPERATOR(pg_catalog.>) s.applied_order ORDER BY x.id LIMIT 1)
           END
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
      LEFT JOIN stored k
             ON s.applied_order IS NOT NULL AND s.tenant OPERATOR(pg_catalog.=) ''
            AND k.project OPERATOR(pg_catalog.=) s.project
            AND k.version OPERATOR(pg_catalog.=) COALESCE(s.version, s.name)
     ORDER BY s.project, s.position, s.repeatable, s.applied_order NULLS LAST, s.sort_key
$$;
