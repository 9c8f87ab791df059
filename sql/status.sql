-- The query of migrate.status(project): $1 is the project, NULL for all. The library keeps it
-- planned for the backend's life (src/status.rs): as a SQL function's body it was planned on
-- every call, a seventh of the call over 10,000 migrations. It reads the tables of every
-- release whose status() is this library's function, 0.6.0 on. Every function and operator is
-- named with its schema, as outside a function that pins search_path: pgspot checks it so.
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
SELECT o.project, o.version, o.name, o.state, o.applied_at, o.applied_by, o.duration_ms, o.checksum,
       o.tenant, o.snapshot
  FROM (
    -- the sort keys first: a sort reads each key after the first from the row in place, and a
    -- key behind columns of varying width is found by walking every column before it (8% of
    -- the call over 10,000, in perf). The outer ORDER BY is the same order: no second sort.
    SELECT s.position, s.repeatable, s.applied_order, s.project, s.sort_key,
           s.version, s.name, s.state, s.applied_at, s.applied_by, s.duration_ms, s.checksum,
           CASE WHEN s.tenant OPERATOR(pg_catalog.<>) '' THEN s.tenant END AS tenant,
           -- the catalog stored right after the migration last ran: the first one stored after it
           CASE WHEN k.project IS NOT NULL THEN
               (SELECT x.hash FROM ROWS FROM (pg_catalog.unnest(k.ids), pg_catalog.unnest(k.hashes)) x(id, hash)
                 WHERE x.id OPERATOR(pg_catalog.>) s.applied_order ORDER BY x.id LIMIT 1)
           END AS snapshot
      FROM (
        SELECT v.project, v.tenant, v.position, v.version, v.name,
               CASE
                   WHEN v.applied THEN 'applied'
                   -- failed until applied, or until its body is replaced (an update event);
                   -- partial while some statements of a non-transactional one have run, which an
                   -- update (of the statements that have not) does not change
                   ELSE COALESCE((SELECT CASE WHEN e.event OPERATOR(pg_catalog.=) 'failed' THEN 'failed'
                                              WHEN e.event OPERATOR(pg_catalog.=) ANY ('{started,ran}') THEN 'partial'
                                          END
                                     FROM migrate.events e
                                    WHERE e.project OPERATOR(pg_catalog.=) v.project
                                      AND e.version OPERATOR(pg_catalog.=) v.version
                                      AND e.tenant OPERATOR(pg_catalog.=) ANY (ARRAY['', v.tenant])
                                      AND (v.transactional OR e.event OPERATOR(pg_catalog.<>) 'update')
                                    ORDER BY e.id DESC LIMIT 1), 'pending')
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
  ) o
 ORDER BY o.project, o.position, o.repeatable, o.applied_order NULLS LAST, o.sort_key
