import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatehouse } from '../testing/process.js';

const fresh = () => join(mkdtempSync(join(tmpdir(), 'gatehouse-admin-')), 'data');

describe('gatehouse agent, reviewer, session, approvals', () => {
  it('prints a token once, keeps only its hash, and answers --json with one object', () => {
    const dir = fresh();
    const add = gatehouse(['agent', 'add', 'deploy-bot', '--environment', 'production', '--json', '--data', dir]);
    assert.equal(add.status, 0, add.stderr);
    const out = JSON.parse(add.stdout);
    assert.equal(out.environment, 'production');
    assert.match(out.token, /^gatehouse_agent_[A-Za-z0-9_-]{43}$/);
    const dump = gatehouse(['audit', 'export', '--jsonl', '--data', dir]).stdout;
    assert.ok(!dump.includes(out.token), 'the token is not in the audit trail');
    assert.match(dump, /"type":"agent.added"/);
    const list = JSON.parse(gatehouse(['agent', 'list', '--json', '--data', dir]).stdout);
    assert.deepEqual(list.agents.map((a: { name: string; environment: string }) => [a.name, a.environment]), [['deploy-bot', 'production']]);
    assert.ok(!JSON.stringify(list).includes('token'), 'list never shows tokens or their hashes');
    const dup = gatehouse(['reviewer', 'add', 'deploy-bot', '--json', '--data', dir]);
    assert.equal(dup.status, 1);
    assert.equal(JSON.parse(dup.stdout).error.code, 'name_taken');
    const rotated = JSON.parse(gatehouse(['agent', 'rotate', 'deploy-bot', '--json', '--data', dir]).stdout);
    assert.notEqual(rotated.token, out.token);
    assert.equal(gatehouse(['agent', 'remove', 'nobody', '--data', dir]).status, 1);
  });

  it('refuses what is off: no environment, a bad name, an agent the policy puts elsewhere', () => {
    const dir = fresh();
    assert.equal(gatehouse(['agent', 'add', 'bot', '--data', dir]).status, 2);
    assert.equal(gatehouse(['agent', 'add', '../bot', '--environment', 'staging', '--data', dir]).status, 2);
    assert.equal(gatehouse(['agent', 'add', 'bot', '--environment', 'Prod!', '--data', dir]).status, 2);
    const policy = join(mkdtempSync(join(tmpdir(), 'gatehouse-admin-policy-')), 'p.yaml');
    writeFileSync(policy, 'version: 1\nagents:\n  bot: { environment: staging }\nrules: []\n');
    const wrong = gatehouse(['agent', 'add', 'bot', '--environment', 'production', '--policy', policy, '--data', dir]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /puts `bot` in staging, not production/);
    assert.equal(gatehouse(['agent', 'add', 'other', '--environment', 'staging', '--policy', policy, '--data', dir]).status, 1);
    assert.equal(gatehouse(['agent', 'add', 'bot', '--environment', 'staging', '--policy', policy, '--data', dir]).status, 0);
  });

  it('says clearly when there is no data directory, and never creates one to read', () => {
    const dir = fresh();
    for (const args of [['session', 'list'], ['approvals'], ['approve', 'apr_x', '--reason', 'r'], ['agent', 'list'], ['session', 'halt', 'ses_x', '--reason', 'r']]) {
      const r = gatehouse([...args, '--data', dir]);
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, /no Gatehouse data in/);
    }
  });

  it('answers and halts only as an authenticated reviewer, and says plainly what is wrong', () => {
    const dir = fresh();
    const agent = JSON.parse(gatehouse(['agent', 'add', 'bot', '--environment', 'staging', '--json', '--data', dir]).stdout).token as string;
    const reviewer = { GATEHOUSE_REVIEWER_TOKEN: JSON.parse(gatehouse(['reviewer', 'add', 'alice', '--json', '--data', dir]).stdout).token as string };
    const anonymous = gatehouse(['approve', 'apr_nothing', '--reason', 'ok', '--json', '--data', dir], undefined, { GATEHOUSE_REVIEWER_TOKEN: '' });
    assert.equal(anonymous.status, 2);
    assert.match(anonymous.stderr, /GATEHOUSE_REVIEWER_TOKEN/);
    const asAgent = gatehouse(['approve', 'apr_nothing', '--reason', 'ok', '--json', '--data', dir], undefined, { GATEHOUSE_REVIEWER_TOKEN: agent });
    assert.equal(asAgent.status, 1);
    assert.equal(JSON.parse(asAgent.stdout).error.code, 'unauthorized');
    const byName = gatehouse(['approve', 'apr_nothing', '--reason', 'ok', '--as', 'alice', '--data', dir], undefined, reviewer);
    assert.equal(byName.status, 2, 'there is no --as: nobody answers by name alone');
    const none = gatehouse(['approve', 'apr_nothing', '--reason', 'ok', '--json', '--data', dir], undefined, reviewer);
    assert.equal(none.status, 1);
    assert.equal(JSON.parse(none.stdout).error.code, 'not_found');
    assert.equal(gatehouse(['reject', 'apr_nothing', '--data', dir], undefined, reviewer).status, 2);
    assert.equal(gatehouse(['session', 'halt', 'ses_nothing', '--data', dir], undefined, reviewer).status, 2);
    assert.equal(gatehouse(['session', 'halt', 'ses_nothing', '--reason', 'stop', '--data', dir], undefined, reviewer).status, 1);
    for (const cmd of ['agent', 'reviewer', 'session', 'approvals', 'serve']) {
      const help = gatehouse([cmd, '--help']);
      assert.equal(help.status, 0, cmd);
      assert.match(help.stdout, /Usage:/);
    }
  });
});
