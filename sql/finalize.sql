-- Read-only views of the state, and the privileges of every object of the extension.

CREATE FUNCTION migrate.status(project text DEFAULT NULL)
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
    SELECT m.project, m.version, m.name,
           CASE
               WHEN a.version IS NOT NULL THEN 'applied'
               -- failed until applied, or until its body is replaced (an update event)
               WHEN (SELECT e.event FROM migrate.events e
                      WHERE e.project OPERATOR(pg_catalog.=) m.project
                        AND e.version OPERATOR(pg_catalog.=) m.version
                      ORDER BY e.id DESC LIMIT 1) OPERATOR(pg_catalog.=) 'failed' THEN 'failed'
               ELSE 'pending'
           END,
           a.applied_at, a.applied_by, a.duration_ms, m.checksum
      FROM migrate.migrations m
      LEFT JOIN migrate.applied a
             ON a.project OPERATOR(pg_catalog.=) m.project
            AND a.version OPERATOR(pg_catalog.=) m.version
     WHERE $1 IS NULL OR m.project OPERATOR(pg_catalog.=) $1
     ORDER BY m.project, a.event_id NULLS LAST, m.version_key
$$;
COMMENT ON FUNCTION migrate.status(text) IS
    'one row per registered migration of a project (NULL: all), applied ones in apply order, then pending ones in version order';

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
    detail      text
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.id, e.project, e.version, e.event, e.role, e.at, e.duration_ms, e.checksum, e.detail
      FROM migrate.events e
     WHERE $1 IS NULL OR e.project OPERATOR(pg_catalog.=) $1
     ORDER BY e.id
$$;
COMMENT ON FUNCTION migrate.history(text) IS 'the event log of a project (NULL: all), oldest first';

-- Functions and procedures are executable by PUBLIC when created; none of these is. The README shows the
-- GRANTs for a read-only role and a deployer role.
REVOKE ALL ON ALL ROUTINES IN SCHEMA migrate FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA migrate FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA migrate FROM PUBLIC;
REVOKE ALL ON SCHEMA migrate FROM PUBLIC;
