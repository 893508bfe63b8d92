import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadParsers } from '../actions/classify.js';
import { verifyChain } from '../audit/chain.js';
import { GatehouseError } from '../gatehouse-error.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { defaultPolicy, loadPolicyText } from '../policy/load.js';
import { mintToken, tokenHash } from '../sessions/tokens.js';
import { signingKey } from '../store/sqlite/audit.js';
import { SqliteStore } from '../store/sqlite/store.js';
import { actionHash, Gateway, MAX_PENDING_PER_SESSION, readActionBody } from './gateway.js';

const TWO_REVIEWERS = `
version: 1
agents:
  ops-bot: { environment: production }
  stage-bot: { environment: staging }
sessions: { maxTtlMinutes: 5 }
approvals: { expiresMinutes: 2 }
rules:
  - { id: reads, verdict: allow, kind: sql, readOnly: true }
  - { id: drops, verdict: ask, kind: sql, statement: [drop_table], reviewers: 2 }
  - { id: deletes, verdict: ask, kind: sql, statement: delete }
`;

interface World {
  gw: Gateway;
  store: SqliteStore;
  clock: { now: number };
  agent(name: string, environment: string): string;
  reviewer(name: string): void;
  act(s: { session: string; token: string }, body: unknown): ReturnType<Gateway['act']>;
}

function world(policy: CompiledPolicy = defaultPolicy()): World {
  const dir = join(mkdtempSync(join(tmpdir(), 'gatehouse-gateway-')), 'data');
  const store = SqliteStore.open(dir);
  const clock = { now: Date.parse('2026-11-21T10:00:00Z') };
  const gw = new Gateway(store, () => policy, 'http://gatehouse.test', () => new Date(clock.now));
  return {
    gw, store, clock,
    agent(name, environment) {
      const token = mintToken('agent');
      store.addAgent(name, environment, tokenHash(token), new Date(clock.now).toISOString());
      return token;
    },
    reviewer(name) {
      store.addReviewer(name, tokenHash(mintToken('reviewer')), new Date(clock.now).toISOString());
    },
    act(s, body) {
      return gw.act(gw.authenticateSession(s.session, s.token), body);
    },
  };
}

async function rejects(p: Promise<unknown>, code: string): Promise<GatehouseError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatehouseError, `not a GatehouseError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

function verify(w: World) {
  return verifyChain([...w.store.audit.records()], w.store.audit.checkpoints(), signingKey(w.store.dir).publicKey);
}

describe('the gateway pipeline', () => {
  before(loadParsers);

  it('binds an ask to the exact action in its session, once', async () => {
    const w = world();
    const s = await w.gw.openSession(w.agent('bot', 'staging'), { task: 'clean up' });
    const del = { kind: 'sql', sql: 'DELETE FROM orders;', reason: 'old data' };
    const first = await w.act(s, del);
    assert.equal(first.verdict, 'ask');
    const again = await w.act(s, del);
    assert.equal(again.approval?.id, first.approval?.id, 'the same pending action does not make a second approval');
    const other = await w.act(s, { kind: 'sql', sql: 'DELETE FROM orders ;' });
    assert.equal(other.verdict, 'ask');
    assert.notEqual(other.approval?.id, first.approval?.id, 'different text is a different action');
    w.reviewer('alice');
    await w.gw.answer(first.approval!.id, 'alice', 'approve', 'row count checked', 'api');
    // another session's identical action is not covered
    const s2 = await w.gw.openSession(w.agent('bot2', 'staging'), { task: 'x' });
    assert.equal((await w.act(s2, del)).verdict, 'ask');
    const used = await w.act(s, del);
    assert.equal(used.verdict, 'allow');
    assert.equal(used.approval?.status, 'used');
    const once = await w.act(s, del);
    assert.equal(once.verdict, 'ask', 'an approval is single-use');
    w.reviewer('bob');
    const late = await rejects(w.gw.answer(first.approval!.id, 'bob', 'approve', 'me too', 'api'), 'conflict');
    assert.match(late.message, /already used/);
    assert.notEqual(once.approval?.id, first.approval?.id);
    const v = verify(w);
    assert.ok(v.ok, JSON.stringify(v.problems));
    const types = [...w.store.audit.records()].map((r) => r.type);
    assert.deepEqual(types.filter((t) => t.startsWith('approval.')), ['approval.created', 'approval.created', 'approval.approved', 'approval.created', 'approval.created']);
  });

  it('never lets the requesting agent answer, and needs two distinct reviewers where the rule says so', async () => {
    const w = world(loadPolicyText(TWO_REVIEWERS, 'two.yaml'));
    const s = await w.gw.openSession(w.agent('ops-bot', 'production'), { task: 'drop a table' });
    const ask = await w.act(s, { kind: 'sql', sql: 'DROP TABLE sessions_old' });
    assert.equal(ask.verdict, 'ask');
    const id = ask.approval!.id;
    await rejects(w.gw.answer(id, 'ops-bot', 'approve', 'I approve myself', 'api'), 'forbidden');
    w.reviewer('alice');
    w.reviewer('bob');
    assert.throws(() => w.reviewer('ops-bot'), /already an agent or a reviewer/);
    const one = await w.gw.answer(id, 'alice', 'approve', 'looks right', 'page');
    assert.equal(one.status, 'pending');
    await rejects(w.gw.answer(id, 'alice', 'approve', 'again', 'page'), 'already_voted');
    assert.equal((await w.act(s, { kind: 'sql', sql: 'DROP TABLE sessions_old' })).verdict, 'ask', 'one of two is not enough');
    const two = await w.gw.answer(id, 'bob', 'approve', 'agreed', 'cli');
    assert.equal(two.status, 'approved');
    assert.deepEqual(two.votes.map((v) => v.reviewer).sort(), ['alice', 'bob']);
    assert.equal((await w.act(s, { kind: 'sql', sql: 'DROP TABLE sessions_old' })).verdict, 'allow');
  });

  it('settles an approval answered twice at once exactly once', async () => {
    const w = world();
    const s = await w.gw.openSession(w.agent('bot', 'staging'), { task: 't' });
    w.reviewer('alice');
    w.reviewer('bob');
    for (let i = 0; i < 5; i++) {
      const ask = await w.act(s, { kind: 'sql', sql: `DELETE FROM t${i}` });
      const results = await Promise.allSettled([
        w.gw.answer(ask.approval!.id, 'alice', 'approve', 'yes', 'page'),
        w.gw.answer(ask.approval!.id, 'bob', i % 2 ? 'reject' : 'approve', 'racing', 'api'),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results));
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.equal((lost.reason as GatehouseError).code, 'conflict');
      assert.equal(w.store.approval(ask.approval!.id)!.votes.length, 1, 'the losing vote is not kept');
    }
  });

  it('expires approvals and sessions; expiry counts as rejection', async () => {
    const w = world(loadPolicyText(TWO_REVIEWERS, 'two.yaml'));
    const s = await w.gw.openSession(w.agent('stage-bot', 'staging'), { task: 't', ttlSeconds: 99_999 });
    assert.equal(Date.parse(s.expires) - w.clock.now, 5 * 60_000, 'the TTL is capped by the policy');
    const ask = await w.act(s, { kind: 'sql', sql: 'DELETE FROM orders' });
    assert.equal(Date.parse(ask.approval!.expires) - w.clock.now, 2 * 60_000);
    w.clock.now += 2 * 60_000;
    w.reviewer('alice');
    await rejects(w.gw.answer(ask.approval!.id, 'alice', 'approve', 'late', 'api'), 'approval_expired');
    assert.equal(w.store.approval(ask.approval!.id)!.status, 'expired');
    await rejects(w.gw.answer(ask.approval!.id, 'alice', 'approve', 'later', 'api'), 'conflict');
    w.clock.now += 3 * 60_000;
    const late = await w.act(s, { kind: 'sql', sql: 'SELECT 1' });
    assert.equal(late.verdict, 'deny');
    assert.equal(late.rule.id, 'gatehouse:session-expired');
    await w.gw.expireDue();
    assert.equal(w.store.session(s.session)!.state, 'expired');
    const types = [...w.store.audit.records()].map((r) => r.type);
    assert.ok(types.includes('approval.expired') && types.includes('session.expired'), types.join());
  });

  it('halts a session: everything after is denied with the reason, pending approvals are withdrawn', async () => {
    const w = world();
    const s = await w.gw.openSession(w.agent('bot', 'staging'), { task: 't' });
    const ask = await w.act(s, { kind: 'sql', sql: 'DELETE FROM orders' });
    await w.gw.haltSession(s.session, 'alice', 'it is deleting the wrong table');
    const after = await w.act(s, { kind: 'shell', command: 'ls' });
    assert.equal(after.verdict, 'deny');
    assert.match(after.reasons[0]!, /halted: it is deleting the wrong table/);
    assert.equal(w.store.approval(ask.approval!.id)!.status, 'rejected');
    await rejects(w.gw.haltSession(s.session, 'alice', 'again'), 'conflict');
    await rejects(w.gw.closeSession(s.session, s.token), 'conflict');
    const records = [...w.store.audit.records()];
    const denied = records.filter((r) => r.type === 'decision' && r.verdict === 'deny');
    assert.equal(denied.length, 1, 'the halted session\'s attempt is itself recorded');
  });

  it('keeps staging identities out of production and agents the policy does not name out entirely', async () => {
    const w = world(loadPolicyText(TWO_REVIEWERS, 'two.yaml'));
    const stage = w.agent('stage-bot', 'staging');
    await rejects(w.gw.openSession(stage, { task: 't', environment: 'production' }), 'forbidden');
    await rejects(w.gw.openSession(w.agent('rogue', 'staging'), { task: 't' }), 'forbidden');
    await rejects(w.gw.openSession(w.agent('ops-bot', 'staging'), { task: 't' }), 'forbidden');
    const ok = await w.gw.openSession(stage, { task: 't', environment: 'staging' });
    assert.equal(ok.environment, 'staging');
    const refused = [...w.store.audit.records()].filter((r) => r.type === 'session.refused');
    assert.equal(refused.length, 3);
  });

  it('refuses wrong tokens without saying which part was wrong', async () => {
    const w = world();
    const agent = w.agent('bot', 'staging');
    const s = await w.gw.openSession(agent, { task: 't' });
    const other = await w.gw.openSession(agent, { task: 'u' });
    for (const [id, token] of [[s.session, other.token], [s.session, agent], [s.session, undefined], ['ses_nope', s.token], [s.session, s.token + 'x'], [s.session, `${s.token.slice(0, -1)}${s.token.endsWith('A') ? 'B' : 'A'}`], [s.session, mintToken('session')]] as const) {
      const err = await rejects(Promise.resolve().then(() => w.gw.authenticateSession(id, token)), 'unauthorized');
      assert.equal(err.message, 'missing or invalid credentials');
    }
    await rejects(w.gw.openSession(s.token, { task: 't' }), 'unauthorized');
    assert.throws(() => w.gw.reviewerByToken(agent), /missing or invalid credentials/);
  });

  it('reads action bodies strictly and binds approvals to the normalized action', () => {
    assert.throws(() => readActionBody({ kind: 'sql', sql: 'SELECT 1', expect: 'allow' }), /unknown field `expect`/);
    assert.throws(() => readActionBody([]), /JSON object/);
    assert.throws(() => readActionBody({ kind: 'sql', sql: 'SELECT 1', reason: 5 }), /reason/);
    assert.throws(() => readActionBody({ kind: 'teleport' }), /kind/);
    const a = readActionBody({ kind: 'sql', sql: 'SELECT 1', reason: 'x' });
    const b = readActionBody({ sql: 'SELECT 1', kind: 'sql', dialect: 'postgres' });
    assert.equal(actionHash(a.action), actionHash(b.action), 'key order and defaults do not change the binding');
  });

  it('redacts secrets in actions, reasons and approvals before they are stored', async () => {
    const w = world();
    const s = await w.gw.openSession(w.agent('bot', 'staging'), { task: 'deploy with ghp_1234567890abcdefghijABCDEFGHIJklmnop' });
    const secret = 'sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz';
    await w.act(s, { kind: 'shell', command: `curl -X POST -H "Authorization: Bearer ${secret}" https://api.stripe.com/v1/refunds`, reason: `using ${secret}` });
    const dump = JSON.stringify([...w.store.audit.records()]) + JSON.stringify(w.store.approvals()) + JSON.stringify(w.store.sessions());
    assert.doesNotMatch(dump, /sk_live_51|ghp_1234/);
    assert.match(dump, /REDACTED/);
  });

  it('signs checkpoints only when there is something new, and the chain verifies with them', async () => {
    const w = world();
    signingKey(w.store.dir);
    assert.equal(w.gw.checkpoint(), null);
    const s = await w.gw.openSession(w.agent('bot', 'staging'), { task: 't' });
    await w.act(s, { kind: 'shell', command: 'ls' });
    assert.equal(w.gw.checkpoint(), 2);
    assert.equal(w.gw.checkpoint(), null);
    const v = verify(w);
    assert.ok(v.ok);
    assert.equal(v.lastGoodCheckpoint, 2);
  });

  it('lets a halt that commits while an action is being decided win', async () => {
    const w = world();
    const s = await w.gw.openSession(w.agent('bot', 'staging'), { task: 't' });
    // the halt is asked first and commits first; the action is authenticated and decided before that commit
    const [, decision] = await Promise.all([
      w.gw.haltSession(s.session, 'alice', 'stop now'),
      w.act(s, { kind: 'shell', command: 'git status' }),
    ]);
    assert.equal(decision.verdict, 'deny');
    assert.equal(decision.rule.id, 'gatehouse:session-halted');
    const ask = await w.act(s, { kind: 'sql', sql: 'DELETE FROM orders' });
    assert.equal(ask.verdict, 'deny');
    assert.equal(w.store.approvals().length, 0, 'no approval is created on a halted session');
  });

  it('does not honour an approval whose status was set without reviewers\' votes', async () => {
    const w = world();
    const s = await w.gw.openSession(w.agent('bot', 'staging'), { task: 't' });
    const ask = await w.act(s, { kind: 'sql', sql: 'DELETE FROM orders' });
    w.store.db.prepare(`UPDATE approvals SET status = 'approved' WHERE id = ?`).run(ask.approval!.id);
    assert.equal((await w.act(s, { kind: 'sql', sql: 'DELETE FROM orders' })).verdict, 'ask');
    w.store.db.prepare(`INSERT INTO approval_votes VALUES (?, 'mallory', 'approve', 'me', '2026-11-21T10:00:00Z')`).run(ask.approval!.id);
    assert.equal((await w.act(s, { kind: 'sql', sql: 'DELETE FROM orders' })).verdict, 'ask', 'a vote by a name that is no reviewer does not count');
  });

  it('caps the approvals one session may have waiting', async () => {
    const w = world();
    const s = await w.gw.openSession(w.agent('bot', 'staging'), { task: 't' });
    for (let i = 0; i < MAX_PENDING_PER_SESSION; i++) assert.equal((await w.act(s, { kind: 'sql', sql: `DELETE FROM t${i}` })).verdict, 'ask');
    const over = await w.act(s, { kind: 'sql', sql: 'DELETE FROM one_more' });
    assert.equal(over.verdict, 'deny');
    assert.match(over.reasons.at(-1)!, /approvals waiting/);
  });

  it('accepts outcomes only for decisions of the same session, and refuses inputs with no canonical form', async () => {
    const w = world();
    const agent = w.agent('bot', 'staging');
    const a = await w.gw.openSession(agent, { task: 'a' });
    const b = await w.gw.openSession(agent, { task: 'b' });
    const d = await w.act(a, { kind: 'shell', command: 'ls' });
    await rejects(w.gw.reportOutcome(b.session, b.token, { decision: d.decision, status: 'ok' }), 'not_found');
    await rejects(w.gw.reportOutcome(a.session, a.token, { decision: 'dec_made_up', status: 'ok' }), 'not_found');
    assert.ok((await w.gw.reportOutcome(a.session, a.token, { decision: d.decision, status: 'ok' })).recorded > 0);
    for (const body of [{ kind: 'constructor' }, { kind: '__proto__' }, { kind: 'toString', x: 1 }, JSON.parse('{"kind":"mcp_tool","server":"s","tool":"t","arguments":{"n":1e400}}')]) {
      await rejects(w.act(a, body), 'input_invalid');
    }
  });

  it('lets the asking session withdraw its pending approval, and no other', async () => {
    const w = world();
    const agent = w.agent('bot', 'staging');
    const s = await w.gw.openSession(agent, { task: 't' });
    const other = await w.gw.openSession(agent, { task: 'u' });
    const ask = await w.act(s, { kind: 'sql', sql: 'DELETE FROM orders' });
    await rejects(w.gw.withdraw(w.gw.authenticateSession(other.session, other.token), ask.approval!.id), 'not_found');
    const withdrawn = await w.gw.withdraw(w.gw.authenticateSession(s.session, s.token), ask.approval!.id);
    assert.equal(withdrawn.status, 'rejected');
    assert.equal(withdrawn.resolution, 'withdrawn by the agent');
    await rejects(w.gw.withdraw(w.gw.authenticateSession(s.session, s.token), ask.approval!.id), 'conflict');
  });

  it('holds the blast-radius caps exactly under concurrency: actions per minute, resources per session', async () => {
    const policy = loadPolicyText(`
version: 1
limits: { actionsPerMinute: { session: 20, agent: 1000 }, resourcesPerSession: 3, onLimit: deny }
rules:
  - { id: any, verdict: allow, kind: [shell, sql] }
`, 'limits.yaml');
    const w = world(policy);
    const s = await w.gw.openSession(w.agent('busy-bot', 'staging'), { task: 'load' });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => w.act(s, { kind: 'sql', sql: `SELECT ${i}` })));
    assert.equal(results.filter((r) => r.verdict === 'allow').length, 20, 'exactly the cap, however the requests interleave');
    const over = results.find((r) => r.verdict === 'deny');
    assert.equal(over?.rule.id, 'gatehouse:limit-rate');
    assert.match(over?.reasons.at(-1) ?? '', /the session sent 20 actions in the last minute; the limit is 20/);
    w.clock.now += 61_000;
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await w.act(s, { kind: 'shell', command: `kubectl create namespace team-${i}` }));
    assert.deepEqual(made.map((r) => r.verdict), ['allow', 'allow', 'allow', 'deny', 'deny']);
    assert.equal(made[3]?.rule.id, 'gatehouse:limit-resources');
    assert.equal((await w.act(s, { kind: 'shell', command: 'kubectl get pods' })).verdict, 'allow', 'reading is not creating');
  });

  it('classifies outcomes: a stop halts and revokes in one transaction; unknown errors are stops; a resume counts budgets afresh', async () => {
    const w = world(loadPolicyText('version: 1\nrules:\n  - { id: any, verdict: allow, kind: shell }\n', 'p.yaml'));
    w.reviewer('lead');
    const s = await w.gw.openSession(w.agent('ops-bot', 'staging'), { task: 'deploy' });
    const session = () => w.gw.authenticateSession(s.session, s.token);
    const d = await w.act(s, { kind: 'shell', command: 'make deploy' });
    const weird = await w.gw.recordOutcome(session(), { decision: d.decision, status: 'error', exitCode: 3, error: 'the flux capacitor is misaligned' });
    assert.equal(weird.class, 'unclassified');
    assert.equal(weird.action, 'stop', 'an error that matches no class is a stop');
    assert.equal(w.store.session(s.session)?.state, 'halted');
    assert.equal((await w.act(s, { kind: 'shell', command: 'make deploy' })).rule.id, 'gatehouse:session-halted');
    const resumed = await w.gw.resumeSession(s.session, 'lead', 'the capacitor is fixed');
    assert.equal(resumed.state, 'active');
    const again = await w.act(s, { kind: 'shell', command: 'make deploy' });
    assert.equal(again.verdict, 'allow');
    const ok = await w.gw.recordOutcome(session(), { decision: again.decision, status: 'ok', exitCode: 0 });
    assert.deepEqual([ok.class, ok.action], [null, 'ok']);
    await rejects(w.gw.resumeSession(s.session, 'lead', 'again'), 'conflict');
    const types = [...w.store.audit.records()].map((r) => r.type).filter((t) => t.startsWith('session.') || t === 'outcome');
    assert.deepEqual(types, ['session.opened', 'outcome', 'session.halted', 'session.resumed', 'outcome']);
    assert.equal(verify(w).ok, true);
  });
});
