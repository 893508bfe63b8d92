import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatehouse } from '../testing/process.js';
import { addAgent, call, startGateway, type RunningGateway } from '../testing/gateway.js';

/**
 * The incidents of DESIGN.md replayed by a scripted agent against a real gateway process, through
 * its API (the enforcement point for SDK users): each run asserts that the audit trail tells the
 * story in order. The cleanup agent's DELETE (held with its row count by sql_query against a real
 * PostgreSQL) is in tools/sql.test.ts; the Claude Code hook's halts in enforcers/hooks.
 */

describe('incident replays: stop means stop', () => {
  let gw: RunningGateway;
  let agent: string;
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-scenarios-'));

  before(async () => {
    const policy = join(root, 'policy.yaml');
    // the default taxonomy, with backoffs short enough for a test (the classes' terms are the default's otherwise)
    writeFileSync(policy, [
      'version: 1',
      'rules:',
      '  - {id: db-client, verdict: allow, kind: shell, program: [psql, grep, cat]}',
      '  - {id: reads, verdict: allow, kind: file_read}',
      '  - {id: sql-reads, verdict: allow, kind: sql, readOnly: true}',
      '  - {id: scale, verdict: allow, kind: shell, program: kubectl, subcommand: scale}',
      '  - {id: api, verdict: allow, kind: shell, program: curl}',
      '  - {id: api-http, verdict: allow, kind: http}',
      'errors:',
      '  - {id: authentication-failed, action: stop, match: {sqlstate: ["28000", 28P01], httpStatus: [401], text: [authentication failed]}}',
      '  - {id: rate-limited, action: recover, retry: {budget: 5, backoffSeconds: 0.05}, match: {httpStatus: [429]}}',
      '',
    ].join('\n'));
    gw = await startGateway({ args: ['--policy', policy] });
    agent = addAgent(gw.dir, 'replay');
  });
  after(async () => {
    await gw?.stop();
  });

  const open = async (task: string) => {
    const r = await call(`${gw.url}/v1/sessions`, { token: agent, body: { task } });
    assert.equal(r.status, 201);
    return r.body as { session: string; token: string };
  };
  const act = async (s: { session: string; token: string }, body: Record<string, unknown>) => (await call(`${gw.url}/v1/sessions/${s.session}/actions`, { token: s.token, body })).body;
  const outcome = async (s: { session: string; token: string }, body: Record<string, unknown>) => {
    const r = await call(`${gw.url}/v1/sessions/${s.session}/outcomes`, { token: s.token, body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  /** The session's records, as `type:detail` lines. */
  const story = (session: string) => gatehouse(['audit', 'export', '--jsonl', '--data', gw.dir]).stdout.trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => r.session === session && r.type !== 'session.opened')
    .map((r) => `${r.type}:${r.type === 'decision' ? `${r.verdict} ${r.rule.id}` : r.type === 'outcome' ? `${r.status} ${r.class ?? ''}`.trim() : (r.by ?? '')}`);

  it('the credential mismatch: the first authentication failure halts; the token found in a file is never used', async () => {
    const s = await open('check the staging database');
    const connect = await act(s, { kind: 'shell', command: 'psql -h staging-db -U app -c "select 1"' });
    assert.equal(connect.verdict, 'allow');
    const failed = await outcome(s, { decision: connect.decision, status: 'error', sqlstate: '28P01', error: 'FATAL: password authentication failed for user "app"' });
    assert.equal(failed.action, 'stop');
    assert.equal(failed.halted, true);
    assert.match(failed.message, /^STOP\. Gatehouse halted this session: a stop-class error: authentication-failed .*The task is over: do not retry, and do not look for other credentials/);
    const search = await act(s, { kind: 'shell', command: 'grep -r "token" ~/projects' });
    assert.equal(search.verdict, 'deny');
    const found = `ghp_${randomBytes(18).toString('hex')}`;
    const use = await act(s, { kind: 'shell', command: `curl -X DELETE -H "Authorization: Bearer ${found}" https://api.railway.app/volumes/prod` });
    assert.equal(use.verdict, 'deny');
    assert.match(use.reasons[0], /the session is halted: a stop-class error: authentication-failed.*The task is over: do not retry or work around it; only a reviewer can resume this session/);
    assert.deepEqual(story(s.session), [
      'decision:allow sql-reads', 'outcome:error authentication-failed', 'session.halted:gatehouse',
      'decision:deny gatehouse:session-halted', 'decision:deny gatehouse:session-halted',
    ]);
    const view = (await call(`${gw.url}/v1/sessions/${s.session}`, { token: gw.reviewerToken as string })).body;
    assert.equal(view.state, 'halted');
    assert.match(view.stateReason, /authentication-failed/);
  });

  it('a token found in a file, in a session that is still running, halts it at first use', async () => {
    const s = await open('tidy the volumes');
    const found = `ghp_${randomBytes(18).toString('hex')}`;
    const use = await act(s, { kind: 'shell', command: `curl -H "Authorization: Bearer ${found}" https://api.github.com/user` });
    assert.equal(use.rule.id, 'gatehouse:credential-not-issued');
    assert.deepEqual(story(s.session), ['decision:deny gatehouse:credential-not-issued', 'session.halted:gatehouse']);
  });

  it('the retry loop: halted when the budget is spent, not at 754; a retry inside its backoff is refused', async () => {
    const s = await open('sync the orders');
    const request = { kind: 'http', method: 'GET', url: 'https://api.example.com/orders?page=1' };
    let halted = 0;
    let refusedEarly = false;
    for (let attempt = 1; attempt <= 754 && halted === 0; attempt++) {
      let d = await act(s, request);
      if (d.rule?.id === 'gatehouse:retry-backoff') {
        refusedEarly = true;
        await new Promise((r) => setTimeout(r, 50 * 2 ** 5));
        d = await act(s, request);
      }
      assert.equal(d.verdict, 'allow', JSON.stringify(d));
      const o = await outcome(s, { decision: d.decision, status: 'error', httpStatus: 429, error: 'Too Many Requests' });
      if (o.halted) halted = attempt;
      else assert.equal(o.action, 'recover');
    }
    assert.equal(halted, 6, 'a budget of 5 failures: the 6th is a stop');
    assert.ok(refusedEarly, 'an immediate retry hit the backoff');
    const lines = story(s.session).filter((l) => !l.includes('retry-backoff'));
    assert.deepEqual(lines.slice(-3), ['decision:allow api-http', 'outcome:error rate-limited', 'session.halted:gatehouse']);
    assert.equal(lines.filter((l) => l === 'outcome:error rate-limited').length, 6);
  });

  it('the scaling loop: held at the first 2× step; a loop of increases halts', async () => {
    const s = await open('keep latency under 200 ms');
    const scale = (n: number) => act(s, { kind: 'shell', command: `kubectl scale deployment/api --replicas=${n} -n prod` });
    assert.equal((await scale(4)).verdict, 'allow', 'the first size sets the baseline');
    const doubled = await scale(8);
    assert.equal(doubled.verdict, 'ask', 'held at the first 2× step');
    assert.equal(doubled.rule.id, 'gatehouse:limit-scale-step');
    assert.match(doubled.reasons.join(' '), /--replicas 4 → 8 is 2\.0× the last value set/);
    const approve = await call(`${gw.url}/v1/approvals/${doubled.approval.id}/approve`, { token: gw.reviewerToken as string, body: { reason: 'load test traffic' } });
    assert.equal(approve.status, 200);
    assert.equal((await scale(8)).verdict, 'allow', 'approved once');
    assert.equal((await scale(12)).verdict, 'allow', '1.5× needs nobody');
    const loop = await scale(16);
    assert.equal(loop.verdict, 'deny');
    assert.equal(loop.rule.id, 'gatehouse:limit-feedback-loop');
    assert.match(loop.reasons.join(' '), /a feedback loop: .*--replicas went 4 → 8 → 12 → 16/);
    assert.equal((await scale(2)).verdict, 'deny', 'halted: even scaling down waits for a reviewer');
    assert.deepEqual(story(s.session), [
      'decision:allow scale', 'decision:ask gatehouse:limit-scale-step', 'approval.created:', 'approval.approved:',
      'decision:allow gatehouse:limit-scale-step', 'decision:allow scale', 'decision:deny gatehouse:limit-feedback-loop', 'session.halted:gatehouse',
      'decision:deny gatehouse:session-halted',
    ]);
  });
});
