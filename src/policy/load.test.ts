import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GatehouseError } from '../gatehouse-error.js';
import { defaultPolicy, loadPolicyFile, loadPolicyText, type PolicyIssue } from './load.js';
import { policyJsonSchema } from './schema.js';

function issuesOf(text: string): PolicyIssue[] {
  try {
    loadPolicyText(text, 'p.yaml');
  } catch (err) {
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.code, 'policy_invalid');
    return err.data.issues as PolicyIssue[];
  }
  return assert.fail('expected the policy to be rejected');
}

describe('policy loader', () => {
  it('loads the built-in default policy', () => {
    const p = defaultPolicy();
    assert.equal(p.default, 'deny');
    assert.ok(p.rules.length > 50);
    assert.ok(p.rules.every((r) => r.line > 0), 'every rule knows its line');
  });

  it('names the line and column of a typo, with a suggestion', () => {
    const issues = issuesOf('version: 1\nrules:\n  - id: a\n    verdcit: allow\n    kind: shell\n');
    const typo = issues.find((i) => i.message.includes('verdcit'));
    assert.ok(typo, JSON.stringify(issues));
    assert.equal(typo.line, 4);
    assert.equal(typo.column, 5);
    assert.match(typo.message, /did you mean `verdict`/);
    const missing = issues.find((i) => i.message.includes('rules[0].verdict'));
    assert.ok(missing, 'the missing verdict is reported too');
    assert.equal(missing.line, 3);
  });

  it('names what was expected for a bad value', () => {
    const [issue] = issuesOf('version: 1\nrules:\n  - id: a\n    verdict: maybe\n    kind: shell\n');
    assert.equal(issue?.line, 4);
    assert.match(issue?.message ?? '', /expected one of "allow", "ask", "deny"/);
  });

  it('rejects a matcher that does not fit the rule kind', () => {
    const [issue] = issuesOf('version: 1\nrules:\n  - id: a\n    verdict: deny\n    kind: sql\n    program: rm\n');
    assert.equal(issue?.line, 6);
    assert.match(issue?.message ?? '', /`program` applies to shell, not sql/);
  });

  it('rejects a CEL condition that does not parse, at its line', () => {
    const [issue] = issuesOf('version: 1\nrules:\n  - id: a\n    verdict: deny\n    kind: shell\n    when: "part.program =="\n');
    assert.equal(issue?.line, 6);
    assert.match(issue?.message ?? '', /CEL/);
  });

  it('rejects a bad error class or credential at its line, and gives policies without errors: the default taxonomy', () => {
    const [regex] = issuesOf('version: 1\nrules: []\nerrors:\n  - id: x\n    action: stop\n    match: {text: [\'(unclosed\']}\n');
    assert.equal(regex?.line, 6);
    assert.match(regex?.message ?? '', /not a regular expression/);
    const [empty] = issuesOf('version: 1\nrules: []\nerrors:\n  - {id: x, action: recover, match: {}}\n');
    assert.match(empty?.message ?? '', /give at least one of/);
    const [cred] = issuesOf('version: 1\nrules: []\ncredentials:\n  gh: {agents: [a], upstream: \'https://x?y=1\', scope: [{}]}\n');
    assert.match(cred?.message ?? '', /without query or fragment/);
    const plain = loadPolicyText('version: 1\nrules: []\n', 'p.yaml');
    assert.deepEqual(plain.errors.map((c) => c.id), defaultPolicy().errors.map((c) => c.id));
    assert.ok(plain.errors.some((c) => c.id === 'authentication-failed' && c.action === 'stop'));
  });

  it('rejects duplicate ids, YAML syntax errors and a missing version', () => {
    const dup = issuesOf('version: 1\nrules:\n  - {id: a, verdict: deny, kind: shell}\n  - {id: a, verdict: allow, kind: sql}\n');
    assert.equal(dup[0]?.line, 4);
    assert.match(dup[0]?.message ?? '', /duplicate rule id/);
    const syntax = issuesOf('version: 1\nrules: [\n');
    assert.ok(syntax[0] && syntax[0].line >= 2);
    assert.match(issuesOf('rules: []\n')[0]?.message ?? '', /version/);
    assert.match(issuesOf('version: 1\nrules:\n  - {id: Bad Id, verdict: deny, kind: shell}\n')[0]?.message ?? '', /lower case/);
  });

  it('names the line of an alias without an anchor before it', () => {
    const [issue] = issuesOf('version: 1\nrules:\n  - {id: a, verdict: deny, kind: shell, program: *progs}\n  - {id: b, verdict: deny, kind: shell, program: &progs [rm]}\n');
    assert.equal(issue?.line, 3);
    assert.match(issue?.message ?? '', /alias \*progs comes before its anchor/);
  });

  it('reports an unreadable file with its own code', () => {
    assert.throws(() => loadPolicyFile('/nonexistent/policy.yaml'), (e: unknown) => e instanceof GatehouseError && e.code === 'policy_unreadable');
  });

  it('keeps the committed JSON Schema in step with the source', () => {
    const committed = JSON.parse(readFileSync(new URL('../../policy.schema.json', import.meta.url), 'utf8'));
    assert.deepEqual(committed, JSON.parse(JSON.stringify(policyJsonSchema())), 'run: ./bin/gatehouse policy schema > policy.schema.json');
  });
});
