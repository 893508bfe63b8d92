import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import pg from 'pg';
import { BIN, gatehouse } from '../testing/process.js';
import { addAgent, call, startGateway } from '../testing/gateway.js';

/** A real PostgreSQL: 127.0.0.1:5432 (`.ci/run` starts it), database `test`, one schema per run. */
const ADMIN = process.env.GATEHOUSE_TEST_DATABASE ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `gh_${randomBytes(4).toString('hex')}`;
/** The tools connect as a plain role of this run, with grants on its schema only (a superuser is refused). */
const role = `${schema}_agent`;
const url = new URL(ADMIN);
url.username = role;
url.password = '';
const DATABASE = url.toString();
const orders = `${schema}.orders`;

async function tools(args: string[]): Promise<Client> {
  const client = new Client({ name: 'gatehouse-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: BIN, args: ['tools', '--database', DATABASE, ...args], stderr: 'ignore' }));
  return client;
}

const text = (r: unknown) => ((r as { content: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('\n');

describe('sql_query against a real PostgreSQL', () => {
  const db = new pg.Pool({ connectionString: ADMIN, max: 2 });
  const count = async () => Number((await db.query(`SELECT count(*) AS n FROM ${orders}`)).rows[0].n);
  const data = join(mkdtempSync(join(tmpdir(), 'gatehouse-sql-')), 'data');

  before(async () => {
    await db.query(`CREATE SCHEMA ${schema}`);
    await db.query(`CREATE TABLE ${orders} (id int PRIMARY KEY, status text NOT NULL, total numeric NOT NULL)`);
    await db.query(`INSERT INTO ${orders} SELECT g, CASE WHEN g % 20 = 0 THEN 'cancelled' ELSE 'paid' END, g % 500 FROM generate_series(1, 100000) g`);
    await db.query(`CREATE ROLE ${role} LOGIN`);
    await db.query(`GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${role}`);
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
  });
  after(async () => {
    await db.query(`DROP SCHEMA ${schema} CASCADE`);
    await db.query(`DROP OWNED BY ${role}`).catch(() => undefined);
    await db.query(`DROP ROLE IF EXISTS ${role}`);
    await db.end();
  });

  it('refuses to start as a superuser role, or against a database it cannot reach', () => {
    const superuser = gatehouse(['tools', '--database', ADMIN, '--data', data]);
    assert.equal(superuser.status, 2, superuser.stderr);
    assert.match(superuser.stderr, /the database role postgres has SUPERUSER.*Connect as a role of its own/);
    const down = gatehouse(['tools', '--database', 'postgres://nobody@127.0.0.1:1/test', '--data', data]);
    assert.equal(down.status, 2, down.stderr);
    assert.match(down.stderr, /could not be reached/);
  });

  it('reads in a read-only transaction and writes what the limits allow', async () => {
    const c = await tools(['--data', data]);
    try {
      assert.match(text(await c.callTool({ name: 'sql_query', arguments: { sql: `SELECT count(*) AS n FROM ${orders} WHERE status = 'cancelled'` } })), /"n":"5000"/);
      const small = await c.callTool({ name: 'sql_query', arguments: { sql: `UPDATE ${orders} SET status = 'refunded' WHERE id <= 10`, reason: 'refund ten orders' } });
      assert.equal(small.isError, undefined, text(small));
      assert.match(text(small), /UPDATE 10/);
      assert.equal(Number((await db.query(`SELECT count(*) AS n FROM ${orders} WHERE status = 'refunded'`)).rows[0].n), 10);
    } finally {
      await c.close();
    }
  });

  it('holds a DELETE without WHERE with the exact count and leaves the table untouched when nobody can approve', async () => {
    const c = await tools(['--data', data]);
    try {
      const r = await c.callTool({ name: 'sql_query', arguments: { sql: `DELETE FROM ${orders}` } });
      assert.equal(r.isError, true);
      assert.match(text(r), /DELETE on .*orders would touch 100,000 rows/);
      assert.equal(await count(), 100000, 'the dry run was rolled back');
      const hidden = await c.callTool({ name: 'sql_query', arguments: { sql: `WITH d AS (DELETE FROM ${orders} WHERE id > 0 RETURNING 1) SELECT count(*) FROM d` } });
      assert.equal(hidden.isError, true, 'a DELETE inside a WITH cannot be counted as its SELECT: it waits for a reviewer');
      assert.match(text(hidden), /cannot be counted/);
      assert.equal(await count(), 100000);
      await db.query(`CREATE TABLE ${schema}.customers (id int PRIMARY KEY); INSERT INTO ${schema}.customers VALUES (1);
        CREATE TABLE ${schema}.carts (id int PRIMARY KEY, customer int REFERENCES ${schema}.customers ON DELETE CASCADE); INSERT INTO ${schema}.carts SELECT g, 1 FROM generate_series(1, 5000) g`);
      const cascade = await c.callTool({ name: 'sql_query', arguments: { sql: `DELETE FROM ${schema}.customers WHERE id = 1` } });
      assert.equal(cascade.isError, true, 'one row, but 5,000 more through the cascade: the count cannot see them');
      assert.match(text(cascade), /cascade into other tables/);
      assert.equal(Number((await db.query(`SELECT count(*) AS n FROM ${schema}.carts`)).rows[0].n), 5000);
      const big = await c.callTool({ name: 'sql_query', arguments: { sql: `UPDATE ${orders} SET total = total + 1 WHERE status = 'paid'` } });
      assert.equal(big.isError, true);
      assert.match(text(big), /would touch 94,990 rows \(the limit is 1,000 rows per statement/);
    } finally {
      await c.close();
    }
    const records = gatehouse(['audit', 'export', '--jsonl', '--data', data]).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(records.some((r) => r.type === 'outcome' && r.rows === 10), 'the committed write counts for the session');
  });

  it('refuses transaction control and setting changes, and times out a statement stuck on a lock', async () => {
    // a policy that allows any SQL: what is under test is what the tool itself refuses and limits
    const anything = join(mkdtempSync(join(tmpdir(), 'gatehouse-sql-policy-')), 'any.yaml');
    writeFileSync(anything, 'version: 1\nrules:\n  - { id: any-sql, verdict: allow, kind: [sql, file_read, file_write] }\n');
    const c = await tools(['--data', data, '--statement-timeout', '1', '--policy', anything]);
    const locker = await db.connect();
    try {
      for (const sql of [`COMMIT; DELETE FROM ${orders} WHERE id = 1`, 'SET statement_timeout = 0', `SELECT set_config('statement_timeout', '0', false)`]) {
        const r = await c.callTool({ name: 'sql_query', arguments: { sql } });
        assert.equal(r.isError, true, sql);
      }
      const many = Date.now();
      const sleepy = await c.callTool({ name: 'sql_query', arguments: { sql: Array.from({ length: 4 }, () => 'SELECT pg_sleep_for(\'0.8 s\')').join('; ') } });
      assert.ok(Date.now() - many < 2_900, 'four statements under the per-statement timeout still stop at the whole call\'s deadline');
      assert.equal(sleepy.isError, true);
      assert.match(text(sleepy), /ERROR 57014/, 'cancelled by the deadline, not refused by the policy');
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${orders} IN ACCESS EXCLUSIVE MODE`);
      const started = Date.now();
      const stuck = await c.callTool({ name: 'sql_query', arguments: { sql: `SELECT count(*) FROM ${orders}` } });
      assert.equal(stuck.isError, true);
      assert.match(text(stuck), /ERROR (55P03|57014)/, 'the SQLSTATE is kept');
      assert.match(String((stuck.structuredContent as { sqlstate?: string }).sqlstate), /^(55P03|57014)$/);
      assert.ok(Date.now() - started < 10_000);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      await c.close();
    }
    assert.equal(await count(), 100000);
  });

  it('behind the gateway: held with the count, approved, run once', async () => {
    const gw = await startGateway();
    const c = await tools(['--gateway', gw.url, '--token', addAgent(gw.dir, 'cleanup-bot')]);
    try {
      const pending = c.callTool({ name: 'sql_query', arguments: { sql: `DELETE FROM ${orders} WHERE status = 'cancelled'`, reason: 'remove cancelled orders' } }, undefined, { timeout: 60_000 });
      let approval: { id: string; decision: { reasons: string[] } } | undefined;
      for (let i = 0; i < 200 && approval === undefined; i++) {
        approval = (await call(`${gw.url}/v1/approvals?status=pending`, { token: gw.reviewerToken! })).body.approvals[0];
        if (approval === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(approval, 'held for a reviewer');
      assert.match(approval.decision.reasons.join(' '), /DELETE on .*orders would touch 5,000 rows/);
      assert.equal(await count(), 100000, 'nothing deleted while held');
      await call(`${gw.url}/v1/approvals/${approval.id}/approve`, { token: gw.reviewerToken!, body: { reason: '5,000 cancelled orders, as expected' } });
      const r = await pending;
      assert.equal(r.isError, undefined, text(r));
      assert.match(text(r), /DELETE 5000/);
      assert.equal(await count(), 95000);
      const again = await c.callTool({ name: 'sql_query', arguments: { sql: `DELETE FROM ${orders} WHERE status = 'cancelled'` } });
      assert.match(text(again), /DELETE 0/, 'the approval was for 5,000 rows; nothing is left to delete and 0 rows is within the limit');
      // the cleanup agent's story, in order: allowed by the rules until counted, held with the count, approved, run once, recorded
      const trail = gatehouse(['audit', 'export', '--jsonl', '--data', gw.dir]).stdout.trim().split('\n').map((l) => JSON.parse(l))
        .filter((x) => ['decision', 'approval.created', 'approval.approved', 'outcome'].includes(x.type)).map((x) => `${x.type}${x.verdict ? `:${x.verdict}` : ''}${x.rows !== undefined ? `:${x.rows}` : ''}`);
      assert.deepEqual(trail.slice(0, 6), ['decision:allow', 'decision:ask', 'approval.created', 'approval.approved', 'decision:allow', 'outcome:5000']);
    } finally {
      await c.close();
      await gw.stop();
    }
  });

  it('serves agents over Streamable HTTP too (--listen)', async () => {
    const { spawn } = await import('node:child_process');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const proc = spawn(BIN, ['tools', '--database', DATABASE, '--data', data, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 200 && !out.includes('listening'); i++) await new Promise((r) => setTimeout(r, 50));
      const c = new Client({ name: 't', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(JSON.parse(out.split('\n')[0] as string).listening as string)));
      assert.match(text(await c.callTool({ name: 'sql_query', arguments: { sql: `SELECT count(*) AS n FROM ${orders}` } })), /"n":"\d+"/);
      await c.close();
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });
});
