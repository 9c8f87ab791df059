-- Read-only views of the state, and the privileges of every object of the extension.

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
    tenant      text,
    snapshot    text
)
STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
-- it reads every migration: hash joins, whatever the statistics say. A merge join sorted every
-- migration to meet the few catalogs stored (a sixth of the call), and before the tables were
-- analyzed the history was probed once per migration (docs/performance.md)
SET enable_mergejoin = off
SET enable_nestloop = off
-- one plan for every project, made once per backend (sql/status.sql)
SET plan_cache_mode = force_generic_plan
LANGUAGE c AS 'MODULE_PATHNAME', 'status_wrapper';
COMMENT ON FUNCTION migrate.status(text) IS
    'one row per registered migration of a project (NULL: all) in each of its histories (its own, or each tenant''s), applied ones in apply order, then pending ones in version order, then the repeatable ones (version NULL) by name; snapshot is the hash of the catalog stored right after it ran';

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
        UNION ALL
        -- the catalog stored after the migration named, with its hash as checksum
        SELECT k.id, k.project, k.version, 'snapshot', k.role, k.at, NULL, k.hash, NULL, NULL, ''
          FROM migrate.snapshots k
         WHERE $1 IS NULL OR k.project OPERATOR(pg_catalog.=) $1
      ) h
     ORDER BY h.id
$$;
COMMENT ON FUNCTION migrate.history(text) IS
    'the event log of a project (NULL: all), oldest first; statement numbers the statements of a non-transactional migration; tenant names the tenant schema an event happened in; a repeatable migration''s events give its name as version; a snapshot event gives the hash of the catalog stored after the migration named';

CREATE FUNCTION migrate.snapshot_changes(before jsonb, after jsonb)
RETURNS TABLE (path text[], change text, was jsonb, now jsonb)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- down both values while both are objects that differ; a key on one side only, or a value
    -- that is not an object on both, is a change
    WITH RECURSIVE walk (path, was, now) AS (
        SELECT ARRAY[]::text[], $1, $2
        UNION ALL
        SELECT w.path OPERATOR(pg_catalog.||) k.key, w.was OPERATOR(pg_catalog.->) k.key, w.now OPERATOR(pg_catalog.->) k.key
          FROM walk w
         CROSS JOIN LATERAL (
               SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(w.was) OPERATOR(pg_catalog.=) 'object'
                                              AND jsonb_typeof(w.now) OPERATOR(pg_catalog.=) 'object'
                                              AND w.was OPERATOR(pg_catalog.<>) w.now THEN w.was END)
               UNION
               SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(w.was) OPERATOR(pg_catalog.=) 'object'
                                              AND jsonb_typeof(w.now) OPERATOR(pg_catalog.=) 'object'
                                              AND w.was OPERATOR(pg_catalog.<>) w.now THEN w.now END)) k(key)
    )
    SELECT w.path,
           CASE WHEN w.was IS NULL THEN 'added' WHEN w.now IS NULL THEN 'removed' ELSE 'changed' END,
           w.was, w.now
      FROM walk w
     WHERE w.was IS DISTINCT FROM w.now
       AND (jsonb_typeof(w.was) OPERATOR(pg_catalog.=) 'object' AND jsonb_typeof(w.now) OPERATOR(pg_catalog.=) 'object') IS NOT TRUE
     ORDER BY w.path COLLATE "C"
$$;
COMMENT ON FUNCTION migrate.snapshot_changes(jsonb, jsonb) IS
    'what differs between two snapshots (migrate.snapshot()): one row per key path added, removed or changed, with the value before and after';

-- The snapshot drift() and verify() compare the catalog with: the newest stored by project (NULL:
-- by any), and, in later, a migration that has run since without one being stored.
CREATE FUNCTION migrate.reference_snapshot(project text)
RETURNS TABLE (project text, version text, snapshot jsonb, later text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.project, k.version, k.snapshot,
           (SELECT l.version
              FROM (SELECT e.id, e.version FROM migrate.events e
                     WHERE e.id OPERATOR(pg_catalog.>) k.id AND e.tenant OPERATOR(pg_catalog.=) ''
                       AND e.event OPERATOR(pg_catalog.=) ANY ('{up,down,baseline,adopt}')
                       AND ($1 IS NULL OR e.project OPERATOR(pg_catalog.=) $1)
                    UNION ALL
                    SELECT e.id, e.name FROM migrate.repeatable_events e
                     WHERE e.id OPERATOR(pg_catalog.>) k.id AND e.tenant OPERATOR(pg_catalog.=) ''
                       AND e.event OPERATOR(pg_catalog.=) 'reapply'
                       AND ($1 IS NULL OR e.project OPERATOR(pg_catalog.=) $1)) l
             ORDER BY l.id DESC LIMIT 1)
      FROM migrate.snapshots k
     WHERE $1 IS NULL OR k.project OPERATOR(pg_catalog.=) $1
     ORDER BY k.id DESC LIMIT 1
$$;

CREATE FUNCTION migrate.drift(project text DEFAULT NULL)
RETURNS TABLE (path text[], change text, was jsonb, now jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reference record;
    whose text := CASE WHEN drift.project IS NULL THEN '' ELSE pg_catalog.format(' of project "%s"', drift.project) END;
BEGIN
    SELECT r.version, r.snapshot, r.later INTO reference FROM migrate.reference_snapshot(drift.project) r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no snapshot of the catalog is stored%', whose
              USING ERRCODE = '55000',
                    HINT = 'up(), apply(), down() and baseline() store one after the migrations they run, unless migrate.snapshots is off.';
    END IF;
    IF reference.later IS NOT NULL THEN
        RAISE EXCEPTION 'the newest snapshot of the catalog% is older than migration "%"', whose, reference.later
              USING ERRCODE = '55000',
                    DETAIL = pg_catalog.format('It was stored after migration "%s"; migration "%s" ran later without one.', reference.version, reference.later),
                    HINT = 'Run migrations with migrate.snapshots set to last or each.';
    END IF;
    RETURN QUERY SELECT c.path, c.change, c.was, c.now FROM migrate.snapshot_changes(reference.snapshot, migrate.snapshot()) c;
END
$$;
COMMENT ON FUNCTION migrate.drift(text) IS
    'what differs between the catalog now and the snapshot stored after the migrations that ran last in project (NULL: in any project): a column added by hand, a dropped index';

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
        UNION ALL
        -- the catalog differs from the snapshot stored after the migrations that ran last, when
        -- they are this project's (see drift())
        SELECT r.project, NULL, r.version, NULL, 6, 'drift',
               pg_catalog.format('%s: %s', pg_catalog.array_to_string(c.path, ' '), c.change)
          FROM migrate.reference_snapshot(NULL) r
         CROSS JOIN LATERAL migrate.snapshot_changes(r.snapshot, migrate.snapshot()) c
         WHERE r.later IS NULL AND ($1 IS NULL OR r.project OPERATOR(pg_catalog.=) $1)
    )
    SELECT p.project, p.version, p.problem, p.detail, p.tenant
      FROM problems p
     ORDER BY p.project, p.tenant NULLS FIRST, p.version_key, p.rank
$$;
COMMENT ON FUNCTION migrate.verify(text) IS
    'what keeps a project (NULL: all) from being exactly its registered migrations, all applied (in each tenant, for one that fans out over tenant schemas), with the catalog they left: no rows when it is';

-- Functions and procedures are executable by PUBLIC when created; none of these is. The README shows the
-- GRANTs for a read-only role and a deployer role.
REVOKE ALL ON ALL ROUTINES IN SCHEMA migrate FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA migrate FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA migrate FROM PUBLIC;
REVOKE ALL ON SCHEMA migrate FROM PUBLIC;
