import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, gatehouse } from '../../testing/process.js';
import { addAgent, call, startGateway, type RunningGateway } from '../../testing/gateway.js';

/**
 * The credential proxy end to end: a real gateway process, a real upstream that accepts only the
 * real credential, phantom tokens lent by real sessions, and `gatehouse run` with a real child.
 */

// a Stripe-shaped live key, made at run time so no secret-shaped literal sits in the sources
const REAL = `sk_live_${randomBytes(18).toString('hex')}`;
const MASTER = randomBytes(32).toString('hex');
const ENV = { GATEHOUSE_MASTER_KEY: MASTER };

interface Hit { method: string; url: string; auth: string | undefined; body: string }

describe('the credential proxy', () => {
  let upstream: Server;
  let upstreamUrl: string;
  const hits: Hit[] = [];
  let gw: RunningGateway;
  let agentToken: string;
  let forwardUrl: string;
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-proxy-'));

  const open = async (task = 'buy things', ttlSeconds?: number) => {
    const r = await call(`${gw.url}/v1/sessions`, { token: agentToken, body: { task, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body as { session: string; token: string; credentials: { name: string; token: string; id: string; env: string; proxy: string }[] };
  };
  const viaProxy = (path: string, phantom: string, init: { method?: string; body?: unknown; credential?: string } = {}) =>
    call(`${gw.url}/proxy/${init.credential ?? 'shop'}${path}`, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers: { authorization: `Bearer ${phantom}` }, ...(init.body === undefined ? {} : { body: init.body }) });
  const realHits = () => hits.filter((h) => h.auth === `Bearer ${REAL}`).length;

  before(async () => {
    upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        hits.push({ method: req.method as string, url: req.url as string, auth: req.headers.authorization, body });
        if (req.headers.authorization !== `Bearer ${REAL}`) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad credential"}');
          return;
        }
        // echoes the credential it was given: the proxy must mask it on the way back
        res.writeHead(200, { 'content-type': 'application/json', 'x-seen-auth': req.headers.authorization }).end(JSON.stringify({ ok: true, method: req.method, url: req.url, seen: req.headers.authorization, body }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const policy = join(root, 'policy.yaml');
    writeFileSync(policy, [
      'version: 1',
      'credentials:',
      '  shop:',
      '    agents: [buyer]',
      `    upstream: ${upstreamUrl}`,
      '    env: SHOP_TOKEN',
      '    scope:',
      '      - {methods: [GET, POST], paths: [/orders, /orders/**, /echo]}',
      '    spend: {field: order.total, perSession: 100, askAbove: 60}',
      '  down:',
      '    secret: shop',
      '    agents: [buyer]',
      '    upstream: http://127.0.0.1:1',
      '    scope: [{methods: [GET], paths: [/**]}]',
      'rules:',
      '  - {id: local-http, verdict: allow, kind: http, host: 127.0.0.1}',
      '  - {id: shell, verdict: allow, kind: shell, program: [echo, curl]}',
      '',
    ].join('\n'));
    const data = join(root, 'data');
    gw = await startGateway({ dir: data, args: ['--policy', policy, '--proxy-listen', '127.0.0.1:0'], env: ENV });
    agentToken = addAgent(data, 'buyer');
    const added = gatehouse(['secret', 'add', 'shop', '--from-env', 'SHOP_REAL', '--data', data, '--json'], undefined, { ...ENV, SHOP_REAL: REAL });
    assert.equal(added.status, 0, added.stderr);
    assert.doesNotMatch(added.stdout + added.stderr, new RegExp(REAL));
    forwardUrl = String(gw.start.forwardProxy);
  });
  after(async () => {
    await gw?.stop();
    upstream?.close();
  });

  it('swaps a valid phantom token for the real credential, and masks the credential echoed back', async () => {
    const s = await open();
    const lent = s.credentials.find((c) => c.name === 'shop');
    assert.deepEqual(s.credentials.map((c) => c.name).sort(), ['down', 'shop'], 'one phantom token per credential lent');
    assert.ok(lent, 'the session is lent the shop credential');
    assert.match(lent.token, /^gatehouse_phantom_[A-Za-z0-9_-]{43}$/);
    assert.equal(lent.env, 'SHOP_TOKEN');
    const before = realHits();
    const r = await viaProxy('/orders?page=1', lent.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(realHits(), before + 1, 'the upstream got the real credential');
    assert.equal(hits.at(-1)?.url, '/orders?page=1');
    assert.equal(r.body.seen, 'Bearer [REDACTED]', 'the echoed secret is masked');
    const records = gatehouse(['audit', 'export', '--jsonl', '--data', gw.dir]).stdout;
    assert.doesNotMatch(records, new RegExp(REAL), 'no audit record holds the secret');
    assert.doesNotMatch(records, new RegExp(lent.token), 'nor the phantom token');
    const decision = records.trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.type === 'decision').at(-1);
    assert.deepEqual(decision.credentials, [{ name: 'shop', secret: 'shop', token: lent.id, cents: 0 }]);
    assert.equal(decision.verdict, 'allow');
  });

  it('never forwards an unknown, out-of-scope, wrong-credential, revoked or expired token', async () => {
    const s = await open();
    const phantom = (s.credentials[0] as { token: string }).token;
    const before = hits.length;
    assert.equal((await viaProxy('/orders', `gatehouse_phantom_${randomBytes(32).toString('base64url')}`)).status, 401);
    assert.equal((await call(`${gw.url}/proxy/shop/orders`)).status, 401, 'no token at all');
    const admin = await viaProxy('/admin/users', phantom);
    assert.equal(admin.status, 403);
    assert.match(admin.body.reasons[0], /outside the scope of shop/);
    assert.equal((await viaProxy('/orders', phantom, { method: 'DELETE' })).status, 403, 'a method outside the scope');
    assert.equal((await viaProxy('/orders%2f..%2fadmin', phantom)).status, 400, 'encoded separators are refused');
    assert.equal((await viaProxy('/orders', phantom, { credential: 'bank' })).status, 403, 'the token is for shop');
    assert.equal(hits.length, before, 'none of these reached the upstream');
    // closed mid-flight: the next request is denied
    assert.equal((await viaProxy('/orders', phantom)).status, 200);
    assert.equal((await call(`${gw.url}/v1/sessions/${s.session}/close`, { token: s.token, body: {} })).status, 200);
    const revoked = await viaProxy('/orders', phantom);
    assert.equal(revoked.status, 403);
    assert.match(revoked.body.reasons[0], /the session is closed/);
    const short = await open('short', 1);
    await new Promise((r) => setTimeout(r, 1300));
    const expired = await viaProxy('/orders', (short.credentials[0] as { token: string }).token);
    assert.equal(expired.status, 403);
    assert.match(expired.body.reasons[0], /expired/);
    assert.equal(hits.length, before + 1, 'only the one request of the open session reached the upstream');
  });

  it('fails closed on an upstream that is down and on a body whose amount cannot be read', async () => {
    const s = await open('faults');
    const down = s.credentials.find((c) => c.name === 'down') as { token: string };
    const shop = s.credentials.find((c) => c.name === 'shop') as { token: string };
    const r = await viaProxy('/status', down.token, { credential: 'down' });
    assert.equal(r.status, 502);
    assert.equal(r.body.verdict, 'deny');
    assert.match(r.body.error, /the upstream could not be reached/);
    const before = hits.length;
    const garbled = await call(`${gw.url}/proxy/shop/orders`, { method: 'POST', headers: { authorization: `Bearer ${shop.token}`, 'content-type': 'text/plain' }, body: 'total=3.00' });
    assert.equal(garbled.status, 403);
    assert.equal(garbled.body.rule, 'gatehouse:spend-unreadable');
    assert.equal(hits.length, before, 'nothing was sent');
    const outcome = gatehouse(['audit', 'export', '--jsonl', '--data', gw.dir]).stdout.trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.type === 'outcome' && x.session === s.session);
    assert.equal(outcome?.class, 'transient-network', 'the failure is classified: recover');
  });

  it('denies and halts a session that uses a credential it was not lent', async () => {
    const a = await open('session a');
    const b = await open('session b');
    const real = await call(`${gw.url}/v1/sessions/${b.session}/actions`, { token: b.token, body: { kind: 'shell', command: `curl -H 'Authorization: Bearer ${REAL}' http://127.0.0.1/orders` } });
    assert.equal(real.body.verdict, 'deny');
    assert.equal(real.body.rule.id, 'gatehouse:credential-not-issued');
    assert.match(real.body.reasons[0], /used a credential not issued to this session/);
    const after = await call(`${gw.url}/v1/sessions/${b.session}/actions`, { token: b.token, body: { kind: 'shell', command: 'echo hello' } });
    assert.equal(after.body.verdict, 'deny', 'the halted session acts no more');
    assert.match(after.body.reasons[0], /halted: used a credential not issued/);
    assert.equal((await viaProxy('/orders', (b.credentials[0] as { token: string }).token)).status, 403, 'its tokens are revoked');
    // a phantom token of another session is not this session's either
    const c = await open('session c');
    const foreign = await call(`${gw.url}/v1/sessions/${c.session}/actions`, { token: c.token, body: { kind: 'shell', command: `curl -H 'Authorization: Bearer ${(a.credentials[0] as { token: string }).token}' http://127.0.0.1:1/orders` } });
    assert.equal(foreign.body.rule.id, 'gatehouse:credential-not-issued');
    // its own phantom token is its own
    const own = await call(`${gw.url}/v1/sessions/${a.session}/actions`, { token: a.token, body: { kind: 'shell', command: `curl -H 'Authorization: Bearer ${(a.credentials[0] as { token: string }).token}' http://127.0.0.1:1/orders` } });
    assert.notEqual(own.body.rule.id, 'gatehouse:credential-not-issued', JSON.stringify(own.body));
    assert.equal(own.body.verdict, 'allow', JSON.stringify(own.body));
    const trail = gatehouse(['audit', 'export', '--jsonl', '--data', gw.dir]).stdout.trim().split('\n').map((l) => JSON.parse(l));
    const halted = trail.find((r) => r.type === 'session.halted' && r.session === b.session);
    assert.ok(halted, 'the halt is in the trail');
    assert.equal(halted.revokedTokens.length, 2, 'both of its phantom tokens');
    assert.doesNotMatch(JSON.stringify(trail), new RegExp(REAL));
  });

  it('holds the spend cap under 50 concurrent requests, and asks above the per-request threshold', async () => {
    const s = await open('fifty orders');
    const phantom = (s.credentials[0] as { token: string }).token;
    const before = hits.filter((h) => h.url === '/orders' && h.method === 'POST' && h.auth === `Bearer ${REAL}`).length;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => viaProxy('/orders', phantom, { body: { order: { total: '3.00', n: i } } })));
    const ok = results.filter((r) => r.status === 200).length;
    assert.equal(ok, 33, '33 × 3.00 = 99.00 fits the 100.00 cap; the 34th would pass it');
    const denied = results.filter((r) => r.status === 403);
    assert.equal(denied.length, 17);
    assert.match(denied[0]?.body.reasons.at(-1), /past its cap of 100\.00/);
    const forwarded = hits.filter((h) => h.url === '/orders' && h.method === 'POST' && h.auth === `Bearer ${REAL}`).slice(before);
    const cents = forwarded.reduce((sum, h) => sum + Math.round(Number(JSON.parse(h.body).order.total) * 100), 0);
    assert.equal(cents, 9900, 'the upstream saw exactly 99.00: never a cent past the cap');
    assert.equal((await viaProxy('/orders', phantom, { body: { order: { total: '1.001' } } })).status, 403, 'an amount with three decimals is refused, not rounded');

    // above askAbove: held for a reviewer, then forwarded once approved
    const big = await open('one big order');
    const bigToken = (big.credentials[0] as { token: string }).token;
    const pending = viaProxy('/orders', bigToken, { body: { order: { total: 70 } } });
    let approval: { id: string } | undefined;
    for (let i = 0; i < 100 && approval === undefined; i++) {
      const list = await call(`${gw.url}/v1/approvals`, { token: gw.reviewerToken as string });
      approval = (list.body.approvals as { id: string; session: string }[]).find((a) => a.session === big.session);
      if (approval === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(approval, 'the request is held as an approval');
    const answered = await call(`${gw.url}/v1/approvals/${approval.id}/approve`, { token: gw.reviewerToken as string, body: { reason: 'the order was expected' } });
    assert.equal(answered.status, 200, JSON.stringify(answered.body));
    const res = await pending;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(JSON.parse(res.body.body).order.total, 70);
  });

  it('forwards plain http through --proxy-listen and refuses CONNECT', async () => {
    const s = await open('forward');
    const phantom = (s.credentials[0] as { token: string }).token;
    const target = new URL(`${upstreamUrl}/orders`);
    const proxy = new URL(forwardUrl);
    const send = (method: string, path: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: proxy.hostname, port: proxy.port, method, path, headers: { host: target.host, authorization: `Bearer ${phantom}` } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode as number, body }));
      });
      req.on('connect', (res) => resolve({ status: res.statusCode as number, body: '' }));
      req.on('error', reject);
      req.end();
    });
    const r = await send('GET', target.toString());
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /"seen":"Bearer \[REDACTED\]"/);
    const outside = await send('GET', 'http://example.com/orders');
    assert.equal(outside.status, 403, 'a host outside the scope');
    const connect = await send('CONNECT', `${target.host}`);
    assert.equal(connect.status, 405);
  });

  it('gatehouse run: the child sees phantom tokens, never the real secret or the agent token, and its exit revokes them', async () => {
    const script = join(root, 'child.mjs');
    writeFileSync(script, [
      'const env = process.env;',
      'const r = await fetch(env.GATEHOUSE_PROXY_SHOP + "orders", { headers: { authorization: "Bearer " + env.SHOP_TOKEN } });',
      'console.log(JSON.stringify({ env, status: r.status }));',
    ].join('\n'));
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(BIN, ['run', '--agent', 'buyer', '--gateway', gw.url, '--task', 'print the environment', '--', process.execPath, script], {
        env: { ...process.env, GATEHOUSE_AGENT_TOKEN: agentToken, STRIPE_SECRET_KEY: REAL, AWS_SECRET_ACCESS_KEY: 'x'.repeat(40) },
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(out.code, 0, out.stderr);
    const seen = JSON.parse(out.stdout) as { env: Record<string, string>; status: number };
    assert.equal(seen.status, 200, 'the child reached the upstream through the proxy');
    assert.doesNotMatch(out.stdout, new RegExp(REAL), 'no real secret in the child');
    assert.ok(!out.stdout.includes(agentToken), 'nor the agent token');
    assert.equal(seen.env.AWS_SECRET_ACCESS_KEY, undefined);
    assert.match(seen.env.SHOP_TOKEN ?? '', /^gatehouse_phantom_/);
    assert.match(out.stderr, /session ses_\w+ closed; its tokens are revoked/);
    const after = await viaProxy('/orders', seen.env.SHOP_TOKEN as string);
    assert.equal(after.status, 403, 'the token died with the process');
    // killed: the session is halted
    const killed = await new Promise<string>((resolve) => {
      const p = spawn(BIN, ['run', '--agent', 'buyer', '--gateway', gw.url, '--', 'sh', '-c', 'kill -9 $$'], { env: { ...process.env, GATEHOUSE_AGENT_TOKEN: agentToken } });
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', () => resolve(stderr));
    });
    assert.match(killed, /halted \(the agent process was killed by SIGKILL\)/);
    const wrong = gatehouse(['run', '--agent', 'someone-else', '--gateway', gw.url, '--', 'true'], undefined, { GATEHOUSE_AGENT_TOKEN: agentToken });
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /the agent token is buyer's, not someone-else's/);
  });

  it('refuses to send when the secret was removed after the token was lent', async () => {
    const s = await open('late removal');
    const phantom = (s.credentials.find((c) => c.name === 'shop') as { token: string }).token;
    const removed = gatehouse(['secret', 'remove', 'shop', '--data', gw.dir]);
    assert.equal(removed.status, 0, removed.stderr);
    const before = hits.length;
    const r = await viaProxy('/orders', phantom);
    assert.equal(r.status, 503);
    assert.equal(r.body.verdict, 'deny');
    assert.match(r.body.error, /not in the secret store; the request was not sent/);
    assert.equal(hits.length, before);
    const back = gatehouse(['secret', 'add', 'shop', '--from-env', 'SHOP_REAL', '--data', gw.dir], undefined, { ...ENV, SHOP_REAL: REAL });
    assert.equal(back.status, 0, back.stderr);
  });

  it('keeps no plaintext secret in the store, and refuses a wrong master key', () => {
    for (const f of readdirSync(gw.dir)) {
      if (!f.startsWith('gatehouse.db')) continue;
      assert.ok(!readFileSync(join(gw.dir, f)).includes(Buffer.from(REAL)), `${f} holds no plaintext secret`);
    }
    const listed = gatehouse(['secret', 'list', '--data', gw.dir, '--json']);
    assert.deepEqual(JSON.parse(listed.stdout).secrets.map((s: { name: string }) => s.name), ['shop']);
    assert.doesNotMatch(listed.stdout, new RegExp(REAL));
    const onCommandLine = gatehouse(['secret', 'add', 'x', REAL, '--data', gw.dir]);
    assert.equal(onCommandLine.status, 2, 'a value on the command line is refused');
    for (const [args, why] of [
      [['--from-env', 'GATEHOUSE_TEST_UNSET_VARIABLE'], /is not set/],
      [['--from-file', join(gw.dir, 'no-such-file')], /cannot read/],
      [['--from-env', 'HOME', '--from-file', '/etc/hostname'], /exactly one of/],
      [[], /exactly one of/],
    ] as const) {
      const r = gatehouse(['secret', 'add', 'x', ...args, '--data', gw.dir]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, why);
    }
    assert.equal(gatehouse(['secret', 'remove', 'nothing-here', '--data', gw.dir]).status, 1);
    const keep = gatehouse(['run', '--agent', 'buyer', '--keep-env', 'STRIPE_SECRET_KEY', '--', 'true']);
    assert.equal(keep.status, 2);
    assert.match(keep.stderr, /named like a credential is not passed on/);
  });
});

