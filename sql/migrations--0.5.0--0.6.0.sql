-- Update from 0.5.0 to 0.6.0: a start-up that ships nothing when nothing changed.
-- register_files() remembers a digest of the files it registered (migrate.file_sets), and
-- files_unchanged() compares a client's sha256sum listing with it. status() finds the snapshot
-- of each migration with one join instead of a lookup per row, and its query is the library's,
-- planned once per backend. snapshot() builds its value as
-- json text, converted once, and reads comments from pg_description directly: the same bytes,
-- in three quarters of the time.
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

CREATE OR REPLACE FUNCTION migrate.snapshot(schemas text[] DEFAULT NULL)
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
               CASE WHEN r.relkind IN ('r', 'p', 'm', 'f') THEN '{}'::json END AS none
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
               (SELECT json_agg(l ORDER BY l)
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
        || jsonb_strip_nulls(json_build_object(
        'schemas', (SELECT json_object_agg(n.nspname, json_build_object(
                        'owner', pg_get_userbyid(n.nspowner),
                        'grants', (SELECT g.lines FROM grants g WHERE g.acl = n.nspacl AND n.nspacl <> acldefault('n', n.nspowner)),
                        'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = n.oid AND dc.classoid = 'pg_namespace'::regclass AND dc.objsubid = 0)))
                      FROM n),
        'extensions', (SELECT json_object_agg(e.extname, json_build_object(
                           'version', e.extversion,
                           'schema', s.nspname,
                           'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = e.oid AND dc.classoid = 'pg_extension'::regclass AND dc.objsubid = 0)))
                         FROM pg_extension e JOIN pg_namespace s ON s.oid = e.extnamespace
                        WHERE e.extname NOT IN ('plpgsql', 'migrations')
                          AND ($1 IS NULL OR s.nspname = ANY ($1))),
        'relations', (SELECT json_object_agg(c.key, json_build_object(
            'kind', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                                   WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                   WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table'
                                   WHEN 'c' THEN 'composite type' END,
            'owner', pg_get_userbyid(c.relowner),
            'grants', (SELECT g.lines FROM grants g WHERE g.acl = c.relacl
                AND c.relacl <> acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)),
            'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = c.oid AND dc.classoid = 'pg_class'::regclass AND dc.objsubid = 0),
            'unlogged', CASE WHEN c.relpersistence = 'u' THEN true END,
            'row_security', CASE WHEN c.relrowsecurity THEN true END,
            'force_row_security', CASE WHEN c.relforcerowsecurity THEN true END,
            'options', to_json(c.reloptions),
            'partition_key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
            'partition_of', CASE WHEN c.relispartition THEN
                (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid) END,
            'partition_bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
            'inherits', CASE WHEN NOT c.relispartition THEN
                (SELECT json_agg(i.inhparent::regclass::text ORDER BY i.inhseqno)
                   FROM pg_inherits i WHERE i.inhrelid = c.oid) END,
            'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
            'columns', CASE WHEN c.relkind <> 'S' THEN (
                SELECT json_object_agg(a.attname, json_build_object(
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
                    'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = c.oid AND dc.classoid = 'pg_class'::regclass AND dc.objsubid = a.attnum),
                    'grants', (SELECT g.lines FROM grants g WHERE g.acl = a.attacl)))
                  FROM (SELECT f.*, row_number() OVER (ORDER BY f.attnum) AS position
                          FROM pg_attribute f
                         WHERE f.attrelid = c.oid AND f.attnum > 0 AND NOT f.attisdropped) a
                  JOIN pg_type y ON y.oid = a.atttypid
                  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum) END,
            'constraints', COALESCE((SELECT json_object_agg(k.conname, json_build_object(
                    'type', CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique'
                                           WHEN 'c' THEN 'check' WHEN 'f' THEN 'foreign key'
                                           WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger' END,
                    'definition', pg_get_constraintdef(k.oid),
                    'inherited', CASE WHEN NOT k.conislocal THEN true END,
                    'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = k.oid AND dc.classoid = 'pg_constraint'::regclass AND dc.objsubid = 0)))
                  FROM pg_constraint k
                 -- NOT NULL is the column's (PostgreSQL 18 also catalogues it as a constraint)
                 WHERE k.conrelid = c.oid AND k.contype <> 'n'), c.none),
            'indexes', COALESCE((SELECT json_object_agg(x.relname, json_build_object(
                    'definition', pg_get_indexdef(i.indexrelid),
                    'clustered', CASE WHEN i.indisclustered THEN true END,
                    'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = x.oid AND dc.classoid = 'pg_class'::regclass AND dc.objsubid = 0)))
                  FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                 WHERE i.indrelid = c.oid), c.none),
            'triggers', COALESCE((SELECT json_object_agg(g.tgname, json_build_object(
                    'definition', pg_get_triggerdef(g.oid),
                    'enabled', CASE WHEN g.tgenabled <> 'O' THEN g.tgenabled::text END,
                    'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = g.oid AND dc.classoid = 'pg_trigger'::regclass AND dc.objsubid = 0)))
                  FROM pg_trigger g
                 -- a foreign key's triggers are the constraint's; a partition's clone is its parent's
                 WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND g.tgparentid = 0), c.none),
            'policies', COALESCE((SELECT json_object_agg(o.polname, json_build_object(
                    'command', CASE o.polcmd WHEN '*' THEN 'ALL' WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                             WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' END,
                    'permissive', o.polpermissive,
                    'roles', (SELECT json_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
                                               ORDER BY CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END)
                                FROM unnest(o.polroles) r),
                    'using', pg_get_expr(o.polqual, o.polrelid),
                    'check', pg_get_expr(o.polwithcheck, o.polrelid)))
                  FROM pg_policy o WHERE o.polrelid = c.oid), c.none),
            'statistics', COALESCE((SELECT json_object_agg(format('%I.%I', s.nspname, x.stxname), pg_get_statisticsobjdef(x.oid))
                  FROM pg_statistic_ext x JOIN pg_namespace s ON s.oid = x.stxnamespace
                 WHERE x.stxrelid = c.oid), c.none),
            'sequence', CASE WHEN c.relkind = 'S' THEN (
                SELECT json_build_object(
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
        'routines', (SELECT json_object_agg(p.key, json_build_object(
                         'kind', CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure'
                                                WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window' END,
                         'owner', pg_get_userbyid(p.proowner),
                         'grants', (SELECT g.lines FROM grants g WHERE g.acl = p.proacl AND p.proacl <> acldefault('f', p.proowner)),
                         'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = p.oid AND dc.classoid = 'pg_proc'::regclass AND dc.objsubid = 0),
                         -- an aggregate has no CREATE FUNCTION to show: its parts are routines
                         'definition', CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
                         'aggregate', CASE WHEN p.prokind = 'a' THEN
                             (SELECT json_build_object('transition', g.aggtransfn::regprocedure::text,
                                                        'final', NULLIF(g.aggfinalfn, 0)::regprocedure::text,
                                                        'state', format_type(g.aggtranstype, NULL),
                                                        'initial', g.agginitval)
                                FROM pg_aggregate g WHERE g.aggfnoid = p.oid) END))
                       FROM p),
        'types', (SELECT json_object_agg(t.key, json_build_object(
                      'kind', CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain'
                                             WHEN 'r' THEN 'range' WHEN 'b' THEN 'base' END,
                      'owner', pg_get_userbyid(t.typowner),
                      'grants', (SELECT g.lines FROM grants g WHERE g.acl = t.typacl AND t.typacl <> acldefault('T', t.typowner)),
                      'comment', (SELECT dc.description FROM pg_description dc WHERE dc.objoid = t.oid AND dc.classoid = 'pg_type'::regclass AND dc.objsubid = 0),
                      'labels', CASE WHEN t.typtype = 'e' THEN
                          (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END,
                      'base', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
                      'not_null', CASE WHEN t.typnotnull THEN true END,
                      'default', t.typdefault,
                      'collation', CASE WHEN t.typtype = 'd' AND t.typcollation <>
                                             (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype) THEN
                          (SELECT format('%I.%I', s.nspname, l.collname) FROM pg_collation l
                             JOIN pg_namespace s ON s.oid = l.collnamespace WHERE l.oid = t.typcollation) END,
                      'constraints', CASE WHEN t.typtype = 'd' THEN
                          (SELECT json_object_agg(k.conname, pg_get_constraintdef(k.oid))
                             FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype <> 'n') END,
                      'subtype', CASE WHEN t.typtype = 'r' THEN
                          (SELECT json_build_object('type', format_type(g.rngsubtype, NULL),
                                                     'opclass', (SELECT format('%I.%I', s.nspname, o.opcname)
                                                                   FROM pg_opclass o JOIN pg_namespace s ON s.oid = o.opcnamespace
                                                                  WHERE o.oid = g.rngsubopc),
                                                     'canonical', NULLIF(g.rngcanonical, 0)::regproc::text,
                                                     'difference', NULLIF(g.rngsubdiff, 0)::regproc::text)
                             FROM pg_range g WHERE g.rngtypid = t.oid) END))
                    FROM t))::jsonb)
$$;
