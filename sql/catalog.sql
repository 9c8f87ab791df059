-- One line per object in the schemas migrations may touch: every schema but the system ones and
-- the extension's own. Run with search_path = pg_catalog, pg_temp, so that definitions come out
-- schema-qualified. migrate.rehearse() compares these lines before and after.
WITH schemas AS (
    SELECT n.oid, n.nspname
      FROM pg_catalog.pg_namespace n
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'migrate', 'pg_toast')
       AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
)
SELECT 'schema ' || s.nspname FROM schemas s
UNION ALL
SELECT CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'v' THEN 'view '
                      WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence '
                      WHEN 'f' THEN 'foreign table ' ELSE 'relation ' END
       || c.oid::pg_catalog.regclass::text
       || CASE WHEN c.relkind IN ('v', 'm') THEN ' AS ' || pg_catalog.pg_get_viewdef(c.oid) ELSE '' END
  FROM pg_catalog.pg_class c JOIN schemas s ON s.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT 'column ' || c.oid::pg_catalog.regclass::text || '.' || pg_catalog.quote_ident(a.attname)
       || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || COALESCE(' DEFAULT ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN schemas s ON s.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT 'constraint ' || c.conname || ' ON ' || c.conrelid::pg_catalog.regclass::text
       || ' ' || pg_catalog.pg_get_constraintdef(c.oid)
  FROM pg_catalog.pg_constraint c JOIN schemas s ON s.oid = c.connamespace
 WHERE c.conrelid <> 0
UNION ALL
SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  JOIN schemas s ON s.oid = c.relnamespace
UNION ALL
SELECT 'sequence ' || q.seqrelid::pg_catalog.regclass::text || ' ' || pg_catalog.format_type(q.seqtypid, NULL)
       || ' START ' || q.seqstart || ' INCREMENT ' || q.seqincrement
  FROM pg_catalog.pg_sequence q
  JOIN pg_catalog.pg_class c ON c.oid = q.seqrelid
  JOIN schemas s ON s.oid = c.relnamespace
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END
       || p.oid::pg_catalog.regprocedure::text
       || ' RETURNS ' || pg_catalog.format_type(p.prorettype, NULL)
       || ' ' || pg_catalog.md5(COALESCE(p.prosrc, '') || COALESCE(pg_catalog.array_to_string(p.proconfig, ','), ''))
  FROM pg_catalog.pg_proc p JOIN schemas s ON s.oid = p.pronamespace
UNION ALL
SELECT 'trigger ' || pg_catalog.pg_get_triggerdef(t.oid)
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
  JOIN schemas s ON s.oid = c.relnamespace
 WHERE NOT t.tgisinternal
UNION ALL
SELECT 'enum ' || t.oid::pg_catalog.regtype::text || ' ('
       || (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
             FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) || ')'
  FROM pg_catalog.pg_type t JOIN schemas s ON s.oid = t.typnamespace
 WHERE t.typtype = 'e'
UNION ALL
SELECT 'type ' || t.oid::pg_catalog.regtype::text || ' ' || t.typtype::text
       || CASE WHEN t.typtype = 'd' THEN ' ' || pg_catalog.format_type(t.typbasetype, t.typtypmod) ELSE '' END
  FROM pg_catalog.pg_type t JOIN schemas s ON s.oid = t.typnamespace
 WHERE t.typtype IN ('d', 'r', 'm')
    OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
