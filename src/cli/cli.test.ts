import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORPUS_DIR, meetsExpectation } from '../testing/corpus.js';
import { gatehouse } from '../testing/process.js';

const tmp = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));

describe('gatehouse check', () => {
  it('exits 0 allow, 10 ask, 20 deny, with the rule and reasons', () => {
    const allow = gatehouse(['check', '--cwd', '/home/dev/app', '--', 'git', 'status']);
    assert.equal(allow.status, 0, allow.stderr);
    assert.match(allow.stdout, /^ALLOW — rule shell-git \(.*default\.yaml:\d+\)/);
    const ask = gatehouse(['check', '--sql', 'DELETE FROM orders']);
    assert.equal(ask.status, 10);
    assert.match(ask.stdout, /sql-unbounded-write/);
    const deny = gatehouse(['check', '--home', '/home/dev', '--', 'git status; rm -rf ~']);
    assert.equal(deny.status, 20);
    assert.match(deny.stdout, /deny +shell +`rm -rf ~` — shell-delete-root-or-home — the 2nd command/);
  });

  it('prints one JSON object with --json', () => {
    const r = gatehouse(['check', '--json', '--', "bash -c 'git push -f'"]);
    assert.equal(r.status, 10);
    const d = JSON.parse(r.stdout);
    assert.equal(d.verdict, 'ask');
    assert.equal(d.rule.id, 'shell-git-rewrites-or-discards');
    assert.ok(d.parts.some((p: { program: string; origin: string }) => p.program === 'git' && /bash -c/.test(p.origin)));
  });

  it('exits 2 on usage errors and broken policies, naming file:line:column', () => {
    assert.equal(gatehouse(['check']).status, 2);
    assert.equal(gatehouse(['check', 'git', 'status']).status, 2);
    assert.equal(gatehouse(['check', '--nope', '--', 'ls']).status, 2);
    assert.equal(gatehouse(['frobnicate']).status, 2);
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nrules:\n  - id: a\n    verdict: allow\n    kind: shell\n    progam: ls\n');
    const r = gatehouse(['check', '--policy', bad, '--', 'ls']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.yaml:6:5: unknown key `progam` \(did you mean `program`\?\)/);
    assert.equal(gatehouse(['check', '--policy', join(tmp, 'missing.yaml'), '--', 'ls']).status, 2);
  });

  it('judges the whole corpus through --jsonl, one answer per line, in order', () => {
    const text = readFileSync(join(CORPUS_DIR, 'actions.dev.jsonl'), 'utf8');
    const r = gatehouse(['check', '--jsonl', '--home', '/home/dev'], text);
    assert.equal(r.status, 0, r.stderr);
    const input = text.trim().split('\n').map((l) => JSON.parse(l));
    const output = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(output.length, input.length);
    output.forEach((o, i) => {
      const c = input[i];
      assert.equal(o.id, c.id);
      assert.deepEqual(Object.keys(o), ['id', 'verdict', 'rule', 'reasons']);
      assert.ok(meetsExpectation(c.expect, o.verdict), `${c.id}: expected ${c.expect}, got ${o.verdict} (${o.reasons[0]})`);
    });
  });

  it('denies malformed --jsonl lines with a reason and goes on', () => {
    const input = Buffer.concat([
      Buffer.from('{"id":"a","kind":"shell","command":"ls","cwd":"/home/dev/app"}\nnot json\n'),
      Buffer.from([0xff, 0xfe, 0x0a]),
      Buffer.from('{"id":"k","kind":"teleport"}\n\n{"id":"s","kind":"sql","sql":"SELEC 1"}\r\n{"id":"last","kind":"sql","sql":"SELECT 1"}'),
    ]);
    const r = gatehouse(['check', '--jsonl'], input);
    assert.equal(r.status, 0);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(out.map((o) => [o.id, o.verdict]), [['a', 'allow'], [null, 'deny'], [null, 'deny'], ['k', 'deny'], [null, 'deny'], ['s', 'deny'], ['last', 'allow']]);
    assert.match(out[1].reasons[0], /not valid JSON/);
    assert.match(out[2].reasons[0], /not valid UTF-8/);
    assert.match(out[3].reasons[0], /kind/);
    assert.match(out[5].reasons[0], /syntax error/);
  });
});

describe('gatehouse policy, init, help', () => {
  it('runs a case file and fails on a wrong expectation', () => {
    const cases = join(tmp, 'cases.yaml');
    writeFileSync(cases, [
      'context: {cwd: /home/dev/app, home: /home/dev}',
      'cases:',
      '  - {id: status, kind: shell, command: git status, expect: allow, rule: shell-git}',
      '  - {id: drop, kind: sql, sql: DROP DATABASE x, expect: deny}',
      '  - {id: push, kind: shell, command: git push -f, expect: gate}',
    ].join('\n'));
    const ok = gatehouse(['policy', 'test', cases]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /3 of 3 cases pass/);
    writeFileSync(cases, 'cases:\n  - {id: wrong, kind: shell, command: rm -rf /, expect: allow}\n');
    const fail = gatehouse(['policy', 'test', cases]);
    assert.equal(fail.status, 1);
    assert.match(fail.stdout, /FAIL +wrong: expected allow, got deny by shell-delete-root-or-home/);
  });

  it('passes the default policy against its own variant, evasion and everyday cases, and the corpus', () => {
    for (const name of ['default.cases.yaml', 'evasion.cases.yaml', 'everyday.cases.yaml', 'redteam.cases.yaml', 'variants.cases.yaml', 'grader2.cases.yaml', 'review.cases.yaml']) {
      const own = gatehouse(['policy', 'test', fileURLToPath(new URL(`../../policies/${name}`, import.meta.url))]);
      assert.equal(own.status, 0, own.stdout);
      assert.match(own.stdout, /(\d+) of \1 cases pass/);
    }
    const corpus = gatehouse(['policy', 'test', join(CORPUS_DIR, 'actions.dev.jsonl'), '--cwd', '/home/dev/app', '--home', '/home/dev']);
    assert.equal(corpus.status, 0, corpus.stdout);
  });

  it('validates a policy and prints the JSON Schema', () => {
    const v = gatehouse(['policy', 'validate', fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))]);
    assert.equal(v.status, 0);
    assert.match(v.stdout, /valid, \d+ rules, default deny/);
    const s = gatehouse(['policy', 'schema']);
    assert.equal(JSON.parse(s.stdout).title, 'Gatehouse policy');
  });

  it('writes the default policy with init, and will not overwrite it', () => {
    const target = join(tmp, 'gatehouse.yaml');
    assert.equal(gatehouse(['init', target]).status, 0);
    assert.equal(gatehouse(['policy', 'validate', target]).status, 0);
    const again = gatehouse(['init', target]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /--force/);
    assert.equal(gatehouse(['init', target, '--force']).status, 0);
  });

  it('has help that names every command', () => {
    const r = gatehouse(['--help']);
    assert.equal(r.status, 0);
    for (const c of ['check', 'policy', 'init', 'hook']) assert.match(r.stdout, new RegExp(`\\n  ${c} `));
    assert.match(gatehouse(['check', '--help']).stdout, /Exit status: 0 allow, 10 ask, 20 deny/);
  });
});
