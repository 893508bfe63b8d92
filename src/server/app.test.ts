import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addAgent, call, openSession, startGateway, type RunningGateway } from '../testing/gateway.js';

describe('the gateway API: bad input and wrong credentials', () => {
  let gw: RunningGateway;
  let agent: string;
  let s: { session: string; token: string };
  let actions: string;

  before(async () => {
    gw = await startGateway({ args: ['--max-body', '4096'] });
    agent = addAgent(gw.dir, 'bot');
    s = await openSession(gw.url, agent);
    actions = `${gw.url}/v1/sessions/${s.session}/actions`;
  });
  after(() => gw.stop());

  it('answers malformed JSON, the wrong media type and unknown fields with 400/415 and a deny', async () => {
    const bad = await call(actions, { token: s.token, body: '{"kind":"shell","command":' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.verdict, 'deny');
    assert.equal(bad.body.error.code, 'malformed_json');
    const form = await call(actions, { token: s.token, body: 'kind=shell', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 415);
    assert.equal(form.body.verdict, 'deny');
    const extra = await call(actions, { token: s.token, body: { kind: 'shell', command: 'ls', expect: 'allow', sudo: true } });
    assert.equal(extra.status, 400);
    assert.match(extra.body.error.message, /unknown fields `expect`, `sudo`/);
    for (const body of [[], 'x', null, { kind: 'shell' }, { kind: 'rpc', method: 'x' }, { kind: 'shell', command: 'ls', reason: { why: 1 } }]) {
      const r = await call(actions, { token: s.token, body: JSON.stringify(body) });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.verdict, 'deny');
    }
  });

  it('refuses an oversized body with 413 and records nothing for it', async () => {
    const before = (await call(`${gw.url}/v1/audit?limit=1`, { token: gw.reviewerToken! })).body.records[0].seq;
    const big = await call(actions, { token: s.token, body: { kind: 'shell', command: `echo ${'x'.repeat(5000)}` } });
    assert.equal(big.status, 413);
    assert.equal(big.body.verdict, 'deny');
    const after = (await call(`${gw.url}/v1/audit?limit=1`, { token: gw.reviewerToken! })).body.records[0].seq;
    assert.equal(after, before);
  });

  it('answers every wrong token with the same 401', async () => {
    const other = await openSession(gw.url, agent);
    const cases: [string, string | undefined][] = [
      [actions, other.token], [actions, agent], [actions, undefined], [actions, gw.reviewerToken!], [actions, `${s.token.slice(0, -1)}${s.token.endsWith('A') ? 'B' : 'A'}`],
      [`${gw.url}/v1/sessions/ses_doesnotexist0/actions`, s.token],
    ];
    for (const [url, token] of cases) {
      const r = await call(url, { token, body: { kind: 'shell', command: 'ls' } });
      assert.equal(r.status, 401, `${url} ${token?.slice(0, 20)}`);
      assert.deepEqual(r.body, { error: { code: 'unauthorized', message: 'missing or invalid credentials' }, verdict: 'deny' });
    }
    const open = await call(`${gw.url}/v1/sessions`, { token: s.token, body: { task: 'x' } });
    assert.equal(open.status, 401);
  });

  it('keeps agent and session tokens out of reviewer endpoints', async () => {
    const ask = await call(actions, { token: s.token, body: { kind: 'sql', sql: 'DELETE FROM orders' } });
    assert.equal(ask.body.verdict, 'ask');
    const id = ask.body.approval.id;
    for (const token of [agent, s.token, undefined]) {
      for (const [method, path] of [['GET', '/v1/approvals'], ['GET', '/v1/sessions'], ['GET', '/v1/audit'], ['GET', '/v1/events'], ['GET', '/v1/me'], ['POST', `/v1/approvals/${id}/approve`]] as const) {
        const r = await call(`${gw.url}${path}`, { method, token, body: method === 'POST' ? { reason: 'mine' } : undefined });
        assert.equal(r.status, 401, `${method} ${path} with ${token?.slice(0, 18)}`);
      }
    }
    // its own session token may read and wait on its approval, not another session's
    assert.equal((await call(`${gw.url}/v1/approvals/${id}`, { token: s.token })).status, 200);
    const other = await openSession(gw.url, agent);
    // a session token halts only its own session (gatehouse run does, when the agent is killed); an agent token halts none
    for (const token of [agent, s.token, undefined]) assert.equal((await call(`${gw.url}/v1/sessions/${other.session}/halt`, { token, body: { reason: 'not mine' } })).status, 401);
    assert.equal((await call(`${gw.url}/v1/approvals/${id}`, { token: other.token })).status, 401);
    const wait = await call(`${gw.url}/v1/approvals/${id}/wait?timeout=0`, { token: s.token });
    assert.equal(wait.body.status, 'pending');
    assert.equal((await call(`${gw.url}/v1/approvals/${id}/wait?timeout=9999`, { token: s.token })).status, 400);
  });

  it('requires the CSRF token and a same-origin request for cookie-authenticated changes', async () => {
    const login = await fetch(`${gw.url}/ui/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: gw.reviewerToken }) });
    assert.equal(login.status, 200);
    const cookie = login.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Strict/i);
    const { csrf } = (await login.json()) as { csrf: string };
    const jar = cookie.split(';')[0] as string;
    const ask = await call(actions, { token: s.token, body: { kind: 'sql', sql: 'DELETE FROM customers' } });
    const url = `${gw.url}/v1/approvals/${ask.body.approval.id}/reject`;
    const noCsrf = await call(url, { body: { reason: 'no' }, headers: { cookie: jar } });
    assert.equal(noCsrf.status, 403);
    const crossSite = await call(url, { body: { reason: 'no' }, headers: { cookie: jar, 'x-gatehouse-csrf': csrf, origin: 'https://evil.example' } });
    assert.equal(crossSite.status, 403);
    const ok = await call(url, { body: { reason: 'no' }, headers: { cookie: jar, 'x-gatehouse-csrf': csrf, origin: gw.url } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, 'rejected');
    assert.equal((await call(`${gw.url}/ui/login`, { body: { token: agent } })).status, 401);
  });

  it('records outcomes, and closes a session so that nothing more is allowed in it', async () => {
    const mine = await openSession(gw.url, agent);
    const url = `${gw.url}/v1/sessions/${mine.session}`;
    const d = await call(`${url}/actions`, { token: mine.token, body: { kind: 'shell', command: 'npm test', reason: 'run the tests' } });
    const outcome = await call(`${url}/outcomes`, { token: mine.token, body: { decision: d.body.decision, status: 'error', exitCode: 1, error: 'tests failed' } });
    assert.equal(outcome.status, 201);
    assert.equal((await call(`${url}/outcomes`, { token: mine.token, body: { decision: d.body.decision, status: 'maybe' } })).status, 400);
    const closed = await call(`${url}/close`, { token: mine.token, body: {} });
    assert.equal(closed.body.state, 'closed');
    const after = await call(`${url}/actions`, { token: mine.token, body: { kind: 'shell', command: 'ls' } });
    assert.equal(after.body.verdict, 'deny');
    assert.equal(after.body.rule.id, 'gatehouse:session-closed');
    const history = (await call(url, { token: gw.reviewerToken! })).body.history.map((r: { type: string }) => r.type).reverse();
    assert.deepEqual(history, ['session.opened', 'decision', 'outcome', 'session.closed', 'decision']);
  });

  it('serves the page with a strict content security policy and nothing external', async () => {
    const res = await fetch(`${gw.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    const html = await res.text();
    assert.doesNotMatch(html, /\b(?:src|href)=["']?(?:https?:)?\/\//i, 'nothing loads from another host');
    const js = await (await fetch(`${gw.url}/ui/app.js`)).text();
    assert.doesNotMatch(js.replace(/http:\/\/www\.w3\.org\/[\w/]+/g, ''), /https?:\/\//, 'the script reaches no other host');
  });
});
