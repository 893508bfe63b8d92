import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, gatehouse } from '../testing/process.js';
import { addAgent, call, openSession, startGateway } from '../testing/gateway.js';
import { DB_FILE } from '../store/sqlite/db.js';

const DELETE = { kind: 'sql', sql: 'DELETE FROM orders;', reason: 'remove old data' };

function records(dir: string): { type: string; [k: string]: unknown }[] {
  const r = gatehouse(['audit', 'export', '--jsonl', '--data', dir]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('gatehouse serve', () => {
  it('keeps pending approvals across a crash: none lost, none doubled', async () => {
    const first = await startGateway();
    const agent = addAgent(first.dir, 'bot');
    const s = await openSession(first.url, agent);
    const ask = await call(`${first.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: DELETE });
    assert.equal(ask.body.verdict, 'ask');
    await first.stop('SIGKILL');
    const second = await startGateway({ dir: first.dir });
    try {
      assert.equal(second.reviewerToken, null, 'the reviewer is created once');
      const again = await call(`${second.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: DELETE });
      assert.equal(again.body.approval.id, ask.body.approval.id, 'the same approval, not a second one');
      const approve = gatehouse(['approve', ask.body.approval.id, '--reason', 'checked the count', '--data', first.dir, '--json'], undefined, { GATEHOUSE_REVIEWER_TOKEN: first.reviewerToken! });
      assert.equal(approve.status, 0, approve.stderr);
      assert.equal(JSON.parse(approve.stdout).approval.status, 'approved');
      const allowed = await call(`${second.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: DELETE });
      assert.equal(allowed.body.verdict, 'allow');
      const created = records(first.dir).filter((r) => r.type === 'approval.created');
      assert.equal(created.length, 1);
    } finally {
      await second.stop();
    }
    const verify = gatehouse(['audit', 'verify', '--data', first.dir]);
    assert.equal(verify.status, 0, verify.stdout);
  });

  it('wakes a long poll when a reviewer answers from the CLI, and lets exactly one of two racing answers win', async () => {
    const gw = await startGateway();
    try {
      const s = await openSession(gw.url, addAgent(gw.dir, 'bot'));
      const tokens = Object.fromEntries(['alice', 'bob'].map((name) => [name, JSON.parse(gatehouse(['reviewer', 'add', name, '--data', gw.dir, '--json']).stdout).token as string]));
      const ask = await call(`${gw.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: DELETE });
      const id = ask.body.approval.id as string;
      const started = Date.now();
      const wait = call(`${gw.url}/v1/approvals/${id}/wait?timeout=20`, { token: s.token });
      const [a, b] = await Promise.all([
        cli(['approve', id, '--reason', 'ok', '--data', gw.dir, '--json'], { GATEHOUSE_REVIEWER_TOKEN: tokens.alice! }),
        cli(['reject', id, '--reason', 'no', '--data', gw.dir, '--json'], { GATEHOUSE_REVIEWER_TOKEN: tokens.bob! }),
      ]);
      assert.deepEqual([a.status, b.status].sort(), [0, 1], `${a.stderr} ${b.stderr}`);
      const loser = a.status === 1 ? a : b;
      assert.equal(JSON.parse(loser.stdout).error.code, 'conflict');
      const settled = await wait;
      assert.ok(Date.now() - started < 10_000);
      assert.equal(settled.body.status, a.status === 0 ? 'approved' : 'rejected');
      assert.equal(settled.body.votes.length, 1);
    } finally {
      await gw.stop();
    }
  });

  it('signs a checkpoint at shutdown that covers every record', async () => {
    const gw = await startGateway();
    const s = await openSession(gw.url, addAgent(gw.dir, 'bot'));
    await call(`${gw.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: { kind: 'shell', command: 'ls' } });
    assert.equal(await gw.stop('SIGTERM'), 0);
    const all = records(gw.dir);
    assert.equal(all.at(-1)?.type, 'gateway.stopped');
    const v = JSON.parse(gatehouse(['audit', 'verify', '--data', gw.dir, '--json']).stdout);
    assert.equal(v.ok, true);
    assert.equal(v.lastGoodCheckpoint, all.length);
  });

  it('reloads an edited policy, and keeps the old one in force when the new one is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-reload-'));
    const file = join(dir, 'policy.yaml');
    const policy = (verdict: string) => `version: 1\nrules:\n  - { id: listing, verdict: ${verdict}, kind: shell, program: ls }\n`;
    writeFileSync(file, policy('allow'));
    const gw = await startGateway({ args: ['--policy', file] });
    try {
      const s = await openSession(gw.url, addAgent(gw.dir, 'bot'));
      const ls = async () => (await call(`${gw.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: { kind: 'shell', command: 'ls' } })).body.verdict;
      assert.equal(await ls(), 'allow');
      writeFileSync(file, policy('deny'));
      await until(async () => (await ls()) === 'deny', 'the file watch picks up the edit');
      writeFileSync(file, 'version: 1\nrules:\n  - { id: listing, verdict: maybe, kind: shell }\n');
      await until(async () => gw.stderr().includes('POLICY REJECTED'), 'an invalid policy is reported');
      assert.match(gw.stderr(), /policy\.yaml:3:\d+: .*verdict/);
      assert.equal(await ls(), 'deny', 'the previous policy stays in force');
      writeFileSync(file, policy('ask'));
      gw.proc.kill('SIGHUP');
      await until(async () => (await ls()) === 'ask', 'SIGHUP reloads');
      const types = records(gw.dir).map((r) => r.type);
      assert.ok(types.includes('policy.rejected') && types.includes('policy.loaded'), types.join());
      assert.equal((await call(`${gw.url}/v1/sessions/${s.session}`, { token: s.token })).body.state, 'active', 'sessions survive reloads');
    } finally {
      await gw.stop();
    }
  });

  it('notifies a webhook with retries and shows a delivery that failed for good', async () => {
    const bodies: unknown[] = [];
    let failFirst = 2;
    const receiver = createServer((req: IncomingMessage, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        bodies.push(JSON.parse(text));
        const fail = req.url === '/always-down' || failFirst-- > 0;
        res.writeHead(fail ? 503 : 200).end(fail ? 'down' : 'ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    const up = await startGateway({ args: ['--webhook', `http://127.0.0.1:${port}/hook/T000/B000/secretpath`, '--webhook-retry-ms', '20'] });
    const down = await startGateway({ args: ['--webhook', `http://127.0.0.1:${port}/always-down`, '--webhook-retry-ms', '20'] });
    try {
      const s = await openSession(up.url, addAgent(up.dir, 'bot'));
      const ask = await call(`${up.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: DELETE });
      await until(async () => (await call(`${up.url}/v1/notifications`, { token: up.reviewerToken! })).body.notifications[0]?.status === 'delivered', 'delivered after retries');
      const n = (await call(`${up.url}/v1/notifications`, { token: up.reviewerToken! })).body.notifications[0];
      assert.equal(n.attempts, 3);
      assert.doesNotMatch(JSON.stringify(n), /secretpath/, 'only the receiver\'s origin is shown');
      const message = bodies[0] as { text: string; blocks: unknown[]; gatehouse: { approval: string; url: string } };
      assert.match(message.text, /Approval needed: bot \(staging\)/);
      assert.equal(message.gatehouse.approval, ask.body.approval.id);
      assert.equal(message.gatehouse.url, `${up.url}/#/approvals/${ask.body.approval.id}`);
      assert.ok(Array.isArray(message.blocks));
      // a stop halts the session, and reviewers hear of it by the same webhook
      const stop = await call(`${up.url}/v1/sessions/${s.session}/outcomes`, { token: s.token, body: { decision: ask.body.decision, status: 'error', httpStatus: 401, error: 'invalid token' } });
      assert.equal(stop.body.halted, true);
      await until(async () => bodies.some((b) => (b as { gatehouse?: { halted?: string } }).gatehouse?.halted === s.session), 'the halt is posted');
      const halt = bodies.find((b) => (b as { gatehouse?: { halted?: string } }).gatehouse?.halted === s.session) as { text: string };
      assert.match(halt.text, /Session halted: bot \(staging\) was stopped by gatehouse: a stop-class error: authentication-failed/);

      const s2 = await openSession(down.url, addAgent(down.dir, 'bot'));
      await call(`${down.url}/v1/sessions/${s2.session}/actions`, { token: s2.token, body: DELETE });
      await until(async () => (await call(`${down.url}/v1/notifications`, { token: down.reviewerToken! })).body.notifications[0]?.status === 'failed', 'fails for good after its tries');
      const failed = (await call(`${down.url}/v1/notifications`, { token: down.reviewerToken! })).body.notifications[0];
      assert.equal(failed.attempts, 5);
      assert.equal(failed.lastError, 'HTTP 503');
      assert.ok(records(down.dir).some((r) => r.type === 'notification.failed'));
    } finally {
      await up.stop();
      await down.stop();
      receiver.close();
    }
  });

  it('names the tampered record when the trail it wrote is edited', async () => {
    const gw = await startGateway();
    const s = await openSession(gw.url, addAgent(gw.dir, 'bot'));
    for (const command of ['ls', 'pwd', 'git status']) await call(`${gw.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: { kind: 'shell', command } });
    const seq = records(gw.dir).find((r) => r.type === 'decision' && (r.action as { command: string }).command === 'pwd')?.seq as number;
    const db = new Database(join(gw.dir, DB_FILE));
    db.prepare(`UPDATE audit SET record = replace(record, '"pwd"', '"rm -rf /"') WHERE id = ?`).run(seq);
    db.close();
    try {
      const api = await call(`${gw.url}/v1/audit/verify`, { token: gw.reviewerToken! });
      assert.equal(api.body.ok, false);
      assert.deepEqual(api.body.problems.map((p: { kind: string; seq: number }) => [p.kind, p.seq]), [['modified', seq]]);
    } finally {
      await gw.stop();
    }
    const cliVerify = gatehouse(['audit', 'verify', '--data', gw.dir]);
    assert.equal(cliVerify.status, 1);
    assert.match(cliVerify.stdout, new RegExp(`modified at ${seq}`));
  });

  it('denies with 503, never allows unaudited, when the disk is full', async (t) => {
    const probe = spawnSync('unshare', ['-m', 'true']);
    if (probe.status !== 0 || spawnSync('nsenter', ['--version']).status !== 0) {
      t.skip('needs `unshare -m` and `nsenter` (a mount namespace) to give the gateway a small disk of its own');
      return;
    }
    const mnt = mkdtempSync(join(tmpdir(), 'gatehouse-full-'));
    // the gateway runs in its own mount namespace on a 4 MiB tmpfs; /proc/PID/root reaches it from here
    const gw = await startGateway({ command: ['unshare', '-m', 'sh', '-c', `mount -t tmpfs -o size=4m tmpfs ${mnt} && exec "$0" "$@"`, BIN], dir: join(mnt, 'data') });
    try {
      const add = spawnSync('nsenter', ['-t', String(gw.proc.pid), '-m', BIN, 'agent', 'add', 'bot', '--environment', 'staging', '--json', '--data', gw.dir], { encoding: 'utf8' });
      assert.equal(add.status, 0, add.stderr);
      const s = await openSession(gw.url, JSON.parse(add.stdout).token);
      const act = () => call(`${gw.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: { kind: 'shell', command: 'ls' } });
      assert.equal((await act()).body.verdict, 'allow');
      const filler = `/proc/${gw.proc.pid}/root${mnt}/filler`;
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
      const full = await act();
      assert.equal(full.status, 503);
      assert.equal(full.body.verdict, 'deny');
      assert.equal(full.body.error.code, 'store_unavailable');
      const ask = await call(`${gw.url}/v1/sessions/${s.session}/actions`, { token: s.token, body: DELETE });
      assert.equal(ask.status, 503);
      spawnSync('rm', ['-f', filler]);
      assert.equal((await act()).body.verdict, 'allow', 'it recovers once there is room');
    } finally {
      await gw.stop();
    }
  });
});

async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out: ${what}`);
}
