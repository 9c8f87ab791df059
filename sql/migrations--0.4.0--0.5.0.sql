-- Update from 0.4.0 to 0.5.0: snapshots of the catalog. migrate.snapshot() describes the user
-- schemas as jsonb; up(), apply(), down() and baseline() store one in migrate.snapshots after the
-- migrations they run (setting migrate.snapshots); status() gains a snapshot column, history()
-- lists the snapshots, drift() compares the catalog with the newest one, and verify() reports
-- what differs. diff() writes the migration that takes the catalog to a desired schema, and
-- declare() registers it.
\echo Use "ALTER EXTENSION migrations UPDATE TO '0.5.0'" to load this file. \quit

CREATE TABLE migrate.snapshots (
    id       bigint      NOT NULL DEFAULT pg_catalog.nextval('migrate.events_id_seq') PRIMARY KEY,
    project  text        NOT NULL,
    version  text        NOT NULL,
    hash     text        NOT NULL,
    snapshot jsonb       NOT NULL,
    role     text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX snapshots_migration_idx ON migrate.snapshots (project, version, id);
COMMENT ON TABLE migrate.snapshots IS 'the catalog of the user schemas (migrate.snapshot()) as the migrations of a call left it; numbered with migrate.events, it describes the catalog after every event before it';
COMMENT ON COLUMN migrate.snapshots.version IS 'the migration that ran last before it (a repeatable one''s name)';
COMMENT ON COLUMN migrate.snapshots.hash IS 'SHA-256 (hex) of the snapshot''s text';

SELECT pg_catalog.pg_extension_config_dump('migrate.snapshots', '');
REVOKE ALL ON TABLE migrate.snapshots FROM PUBLIC;

CREATE FUNCTION migrate.snapshot(schemas text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- compiling the large query costs more than running it
SET jit = off
AS $$
    WITH RECURSIVE n AS MATERIALIZED (
        -- the schemas described: the ones asked for, or every one but the system's, the
        -- extension's own and those an extension created
        SELECT s.oid, s.nspname, s.nspowner, s.nspacl
          FROM pg_namespace s
         WHERE CASE WHEN $1 IS NULL
                    THEN s.nspname NOT IN ('pg_catalog', 'information_schema', 'migrate', 'pg_toast')
                         AND s.nspname NOT LIKE 'pg\_temp\_%' AND s.nspname NOT LIKE 'pg\_toast\_temp\_%'
                         AND NOT EXISTS (SELECT FROM pg_depend d
                                          WHERE d.classid = 'pg_namespace'::regclass AND d.objid = s.oid
                                            AND d.deptype = 'e')
                    -- a schema named that does not exist is an error (3F000)
                    ELSE s.oid = ANY (ARRAY(SELECT quote_ident(x) FROM unnest($1) x)::regnamespace[]::oid[]) END
    ), member AS MATERIALIZED (
        -- objects that belong to an extension: CREATE EXTENSION makes them, not a migration
        SELECT d.classid, d.objid FROM pg_depend d WHERE d.deptype = 'e'
    ), c AS MATERIALIZED (
        -- none: an empty object in a table, so that a first or last constraint, index, trigger,
        -- policy or statistics object is a key added or removed
        SELECT r.*, format('%I.%I', n.nspname, r.relname) AS key,
               CASE WHEN r.relkind IN ('r', 'p', 'm', 'f') THEN '{}'::jsonb END AS none
          FROM pg_class r JOIN n ON n.oid = r.relnamespace
         WHERE r.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
           AND NOT EXISTS (SELECT FROM member m WHERE m.classid = 'pg_class'::regclass AND m.objid = r.oid)
    ), t AS MATERIALIZED (
        SELECT y.*, format('%I.%I', n.nspname, y.typname) AS key
          FROM pg_type y JOIN n ON n.oid = y.typnamespace
         -- an array type comes with its element type, a multirange with its range, a row type
         -- with its relation
         WHERE y.typtype IN ('e', 'd', 'r', 'b')
           AND NOT (y.typtype = 'b' AND y.typcategory = 'A')
           AND NOT EXISTS (SELECT FROM member m WHERE m.classid = 'pg_type'::regclass AND m.objid = y.oid)
    ), p AS MATERIALIZED (
        SELECT f.*, f.oid::regprocedure::text AS key
          FROM pg_proc f JOIN n ON n.oid = f.pronamespace
         WHERE NOT EXISTS (SELECT FROM member m WHERE m.classid = 'pg_proc'::regclass AND m.objid = f.oid)
           -- a range type's constructors come with it
           AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = f.oid
                                                     AND d.deptype = 'i')
    ), grants AS MATERIALIZED (
        -- an ACL as sorted lines "grantee PRIVILEGE [WITH GRANT OPTION] BY grantor"; NULL while
        -- the object keeps its default privileges (also once a GRANT is revoked)
        SELECT x.acl,
               (SELECT jsonb_agg(l ORDER BY l)
                  FROM (SELECT format('%s %s%s BY %s',
                                      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                                      a.privilege_type,
                                      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                                      quote_ident(pg_get_userbyid(a.grantor))) AS l
                          FROM aclexplode(x.acl) a) e) AS lines
          FROM (SELECT DISTINCT acl FROM (
                    SELECT nspacl FROM n UNION ALL SELECT relacl FROM c UNION ALL SELECT typacl FROM t
                    UNION ALL SELECT proacl FROM p
                    UNION ALL SELECT a.attacl FROM pg_attribute a JOIN c ON c.oid = a.attrelid
                     WHERE a.attacl IS NOT NULL) u(acl)
                 WHERE acl IS NOT NULL) x
    )
    SELECT '{"schemas": {}, "extensions": {}, "relations": {}, "routines": {}, "types": {}}'::jsonb
        || jsonb_strip_nulls(jsonb_build_object(
        'schemas', (SELECT jsonb_object_agg(n.nspname, jsonb_build_object(
                        'owner', pg_get_userbyid(n.nspowner),
                        'grants', (SELECT g.lines FROM grants g WHERE g.acl = n.nspacl AND n.nspacl <> acldefault('n', n.nspowner)),
                        'comment', obj_description(n.oid, 'pg_namespace')))
                      FROM n),
        'extensions', (SELECT jsonb_object_agg(e.extname, jsonb_build_object(
                           'version', e.extversion,
                           'schema', s.nspname,
                           'comment', obj_description(e.oid, 'pg_extension')))
                         FROM pg_extension e JOIN pg_namespace s ON s.oid = e.extnamespace
                        WHERE e.extname NOT IN ('plpgsql', 'migrations')
                          AND ($1 IS NULL OR s.nspname = ANY ($1))),
        'relations', (SELECT jsonb_object_agg(c.key, jsonb_build_object(
            'kind', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                                   WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                   WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
                                   WHEN 'c' THEN 'composite type' END,
            'owner', pg_get_userbyid(c.relowner),
            'grants', (SELECT g.lines FROM grants g WHERE g.acl = c.relacl
                AND c.relacl <> acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)),
            'comment', obj_description(c.oid, 'pg_class'),
            'unlogged', CASE WHEN c.relpersistence = 'u' THEN true END,
            'row_security', CASE WHEN c.relrowsecurity THEN true END,
            'force_row_security', CASE WHEN c.relforcerowsecurity THEN true END,
            'options', to_jsonb(c.reloptions),
            'partition_key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
            'partition_of', CASE WHEN c.relispartition THEN
                (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid) END,
            'partition_bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
            'inherits', CASE WHEN NOT c.relispartition THEN
                (SELECT jsonb_agg(i.inhparent::regclass::text ORDER BY i.inhseqno)
                   FROM pg_inherits i WHERE i.inhrelid = c.oid) END,
            'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
            'columns', CASE WHEN c.relkind <> 'S' THEN (
                SELECT jsonb_object_agg(a.attname, jsonb_build_object(
                    'position', a.position,
                    'type', format_type(a.atttypid, a.atttypmod),
                    'not_null', CASE WHEN a.attnotnull THEN true END,
                    'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                    'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                    'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
                    'collation', CASE WHEN a.attcollation <> y.typcollation THEN
                        (SELECT format('%I.%I', s.nspname, l.collname) FROM pg_collation l
                           JOIN pg_namespace s ON s.oid = l.collnamespace WHERE l.oid = a.attcollation) END,
                    'storage', CASE WHEN a.attstorage <> y.typstorage THEN a.attstorage::text END,
                    'inherited', CASE WHEN NOT a.attislocal THEN true END,
                    'comment', col_description(c.oid, a.attnum),
                    'grants', (SELECT g.lines FROM grants g WHERE g.acl = a.attacl)))
                  FROM (SELECT f.*, row_number() OVER (ORDER BY f.attnum) AS position
                          FROM pg_attribute f
                         WHERE f.attrelid = c.oid AND f.attnum > 0 AND NOT f.attisdropped) a
                  JOIN pg_type y ON y.oid = a.atttypid
                  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum) END,
            'constraints', COALESCE((SELECT jsonb_object_agg(k.conname, jsonb_build_object(
                    'type', CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique'
                                           WHEN 'c' THEN 'check' WHEN 'f' THEN 'foreign key'
                                           WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' END,
                    'definition', pg_get_constraintdef(k.oid),
                    'inherited', CASE WHEN NOT k.conislocal THEN true END,
                    'comment', obj_description(k.oid, 'pg_constraint')))
                  FROM pg_constraint k
                 -- NOT NULL is the column's (PostgreSQL 18 also catalogues it as a constraint)
                 WHERE k.conrelid = c.oid AND k.contype <> 'n'), c.none),
            'indexes', COALESCE((SELECT jsonb_object_agg(x.relname, jsonb_build_object(
                    'definition', pg_get_indexdef(i.indexrelid),
                    'clustered', CASE WHEN i.indisclustered THEN true END,
                    'comment', obj_description(x.oid, 'pg_class')))
                  FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                 WHERE i.indrelid = c.oid), c.none),
            'triggers', COALESCE((SELECT jsonb_object_agg(g.tgname, jsonb_build_object(
                    'definition', pg_get_triggerdef(g.oid),
                    'enabled', CASE WHEN g.tgenabled <> 'O' THEN g.tgenabled::text END,
                    'comment', obj_description(g.oid, 'pg_trigger')))
                  FROM pg_trigger g
                 -- a foreign key's triggers are the constraint's; a partition's clone is its parent's
                 WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND g.tgparentid = 0), c.none),
            'policies', COALESCE((SELECT jsonb_object_agg(o.polname, jsonb_build_object(
                    'command', CASE o.polcmd WHEN '*' THEN 'ALL' WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                             WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' END,
                    'permissive', o.polpermissive,
                    'roles', (SELECT jsonb_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
                                               ORDER BY CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END)
                                FROM unnest(o.polroles) r),
                    'using', pg_get_expr(o.polqual, o.polrelid),
                    'check', pg_get_expr(o.polwithcheck, o.polrelid)))
                  FROM pg_policy o WHERE o.polrelid = c.oid), c.none),
            'statistics', COALESCE((SELECT jsonb_object_agg(format('%I.%I', s.nspname, x.stxname), pg_get_statisticsobjdef(x.oid))
                  FROM pg_statistic_ext x JOIN pg_namespace s ON s.oid = x.stxnamespace
                 WHERE x.stxrelid = c.oid), c.none),
            'sequence', CASE WHEN c.relkind = 'S' THEN (
                SELECT jsonb_build_object(
                    'type', format_type(q.seqtypid, NULL),
                    'start', q.seqstart, 'increment', q.seqincrement,
                    'min', q.seqmin, 'max', q.seqmax, 'cache', q.seqcache, 'cycle', q.seqcycle,
                    'owned_by', (SELECT format('%s.%I', d.refobjid::regclass, a.attname)
                                   FROM pg_depend d
                                   JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
                  FROM pg_sequence q WHERE q.seqrelid = c.oid) END))
          FROM c),
        'routines', (SELECT jsonb_object_agg(p.key, jsonb_build_object(
                         'kind', CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure'
                                                WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window' END,
                         'owner', pg_get_userbyid(p.proowner),
                         'grants', (SELECT g.lines FROM grants g WHERE g.acl = p.proacl AND p.proacl <> acldefault('f', p.proowner)),
                         'comment', obj_description(p.oid, 'pg_proc'),
                         -- an aggregate has no CREATE FUNCTION to show: its parts are routines
                         'definition', CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
                         'aggregate', CASE WHEN p.prokind = 'a' THEN
                             (SELECT jsonb_build_object('transition', g.aggtransfn::regprocedure::text,
                                                        'final', NULLIF(g.aggfinalfn, 0)::regprocedure::text,
                                                        'state', format_type(g.aggtranstype, NULL),
                                                        'initial', g.agginitval)
                                FROM pg_aggregate g WHERE g.aggfnoid = p.oid) END))
                       FROM p),
        'types', (SELECT jsonb_object_agg(t.key, jsonb_build_object(
                      'kind', CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain'
                                             WHEN 'r' THEN 'range' WHEN 'b' THEN 'base' END,
                      'owner', pg_get_userbyid(t.typowner),
                      'grants', (SELECT g.lines FROM grants g WHERE g.acl = t.typacl AND t.typacl <> acldefault('T', t.typowner)),
                      'comment', obj_description(t.oid, 'pg_type'),
                      'labels', CASE WHEN t.typtype = 'e' THEN
                          (SELECT jsonb_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END,
                      'base', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
                      'not_null', CASE WHEN t.typnotnull THEN true END,
                      'default', t.typdefault,
                      'collation', CASE WHEN t.typtype = 'd' AND t.typcollation <>
                                             (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype) THEN
                          (SELECT format('%I.%I', s.nspname, l.collname) FROM pg_collation l
                             JOIN pg_namespace s ON s.oid = l.collnamespace WHERE l.oid = t.typcollation) END,
                      'constraints', CASE WHEN t.typtype = 'd' THEN
                          (SELECT jsonb_object_agg(k.conname, pg_get_constraintdef(k.oid))
                             FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype <> 'n') END,
                      'subtype', CASE WHEN t.typtype = 'r' THEN
                          (SELECT jsonb_build_object('type', format_type(g.rngsubtype, NULL),
                                                     'opclass', (SELECT format('%I.%I', s.nspname, o.opcname)
                                                                   FROM pg_opclass o JOIN pg_namespace s ON s.oid = o.opcnamespace
                                                                  WHERE o.oid = g.rngsubopc),
                                                     'canonical', NULLIF(g.rngcanonical, 0)::regproc::text,
                                                     'difference', NULLIF(g.rngsubdiff, 0)::regproc::text)
                             FROM pg_range g WHERE g.rngtypid = t.oid) END))
                    FROM t)))
$$;
COMMENT ON FUNCTION migrate.snapshot(text[]) IS
    'the catalog of the given schemas (NULL: every user schema) as jsonb: schemas, extensions, relations with their columns, constraints, indexes, triggers, policies and grants, routines and types; the same catalog gives the same bytes';

-- status() gains a column, so it is dropped and created again (as in sql/finalize.sql); the
-- EXECUTE grants a reader role had on it are carried over.
SELECT pg_catalog.set_config('migrations.update_grants', COALESCE(pg_catalog.string_agg(
           pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s', p.oid::pg_catalog.regprocedure,
               a.grantee::pg_catalog.regrole::pg_catalog.text,
               CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), '; '), ''), true)
  FROM pg_catalog.pg_proc p
 CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
 WHERE p.oid OPERATOR(pg_catalog.=) 'migrate.status(text)'::pg_catalog.regprocedure
   AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
   AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
   AND a.grantee OPERATOR(pg_catalog.<>) 0;

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
           -- the catalog stored right after the migration last ran (see migrate.snapshots)
           (SELECT k.hash FROM migrate.snapshots k
             WHERE s.applied_order IS NOT NULL AND s.tenant OPERATOR(pg_catalog.=) ''
               AND k.project OPERATOR(pg_catalog.=) s.project
               AND k.version OPERATOR(pg_catalog.=) COALESCE(s.version, s.name)
               AND k.id OPERATOR(pg_catalog.>) s.applied_order
             ORDER BY k.id LIMIT 1)
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
    'one row per registered migration of a project (NULL: all) in each of its histories (its own, or each tenant''s), applied ones in apply order, then pending ones in version order, then the repeatable ones (version NULL) by name; snapshot is the hash of the catalog stored right after it ran';

CREATE OR REPLACE FUNCTION migrate.history(project text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION migrate.verify(project text DEFAULT NULL)
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

REVOKE ALL ON FUNCTION migrate.snapshot(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.status(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.snapshot_changes(jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.reference_snapshot(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.drift(text) FROM PUBLIC;

CREATE FUNCTION migrate.diff(desired_sql text, schemas text[] DEFAULT NULL, allow_destructive boolean DEFAULT false)
RETURNS TABLE (up text, down text)
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'diff_wrapper';

CREATE FUNCTION migrate.declare(version text, name text, desired_sql text, project text DEFAULT 'default',
                                schemas text[] DEFAULT NULL, allow_destructive boolean DEFAULT false)
RETURNS text
VOLATILE PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'declare_wrapper';

REVOKE ALL ON FUNCTION migrate.diff(text, text[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION migrate.declare(text, text, text, text, text[], boolean) FROM PUBLIC;

DO $$
DECLARE
    grants text := pg_catalog.current_setting('migrations.update_grants');
BEGIN
    IF grants OPERATOR(pg_catalog.<>) '' THEN
        EXECUTE grants;
    END IF;
END
$$;
