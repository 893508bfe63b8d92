import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatehouse } from '../../testing/process.js';
import { addAgent, call, startGateway } from '../../testing/gateway.js';

/** Real PreToolUse payloads (Claude Code hooks reference), fed to a real hook process. */
function payload(tool_name: string, tool_input: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    session_id: 'abc123',
    transcript_path: '/home/dev/.claude/projects/app/abc123.jsonl',
    cwd: '/home/dev/app',
    permission_mode: 'default',
    hook_event_name: 'PreToolUse',
    tool_name,
    tool_input,
    tool_use_id: 'toolu_01ABC',
    ...extra,
  });
}

const DATA = join(mkdtempSync(join(tmpdir(), 'gatehouse-hook-data-')), 'data');

function runHook(input: string | Buffer, args: string[] = [], data = DATA) {
  const r = gatehouse(['hook', 'claude-code', '--data', data, ...args], input, { HOME: '/home/dev' });
  return { ...r, out: r.status === 0 && r.stdout ? JSON.parse(r.stdout).hookSpecificOutput : null, whole: r.status === 0 && r.stdout ? JSON.parse(r.stdout) : null };
}

/** A PostToolUse / PostToolUseFailure payload for the call `tool_use_id`. */
function result(session: string, toolUseId: string, error?: string) {
  return JSON.stringify({
    session_id: session, transcript_path: '/home/dev/.claude/projects/app/x.jsonl', cwd: '/home/dev/app', permission_mode: 'default',
    hook_event_name: error === undefined ? 'PostToolUse' : 'PostToolUseFailure', tool_name: 'Bash', tool_input: { command: 'x' }, tool_use_id: toolUseId,
    ...(error === undefined ? { tool_response: { stdout: 'ok', stderr: '', interrupted: false } } : { error, is_interrupt: false }),
  });
}

describe('gatehouse hook claude-code', () => {
  it('blocks rm -rf ~ and allows git status', () => {
    const deny = runHook(payload('Bash', { command: 'rm -rf ~', description: 'clean up' }));
    assert.equal(deny.status, 0, deny.stderr);
    assert.equal(deny.out.hookEventName, 'PreToolUse');
    assert.equal(deny.out.permissionDecision, 'deny');
    assert.match(deny.out.permissionDecisionReason, /shell-delete-root-or-home/);
    const allow = runHook(payload('Bash', { command: 'git status', description: 'Show status', timeout: 120000, run_in_background: false }));
    assert.equal(allow.out.permissionDecision, 'allow');
  });

  it('asks for what a human should see', () => {
    assert.equal(runHook(payload('Bash', { command: 'git push --force origin main' })).out.permissionDecision, 'ask');
  });

  it('maps every tool kind', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['Read', { file_path: '/home/dev/app/src/index.ts' }, 'allow'],
      ['Read', { file_path: '/home/dev/.ssh/id_ed25519', offset: 1, limit: 20 }, 'deny'],
      ['Write', { file_path: '/home/dev/app/src/a.ts', content: 'export {}\n' }, 'allow'],
      ['Write', { file_path: '/home/dev/.ssh/authorized_keys', content: 'ssh-ed25519 AAAA x' }, 'deny'],
      ['Edit', { file_path: '/etc/hosts', old_string: 'a', new_string: 'b', replace_all: false }, 'deny'],
      ['Edit', { file_path: '/home/dev/app/README.md', old_string: 'a', new_string: 'b' }, 'allow'],
      ['MultiEdit', { file_path: '/home/dev/.bashrc', edits: [{ old_string: 'a', new_string: 'b' }] }, 'ask'],
      ['NotebookEdit', { notebook_path: '/home/dev/app/nb.ipynb', new_source: 'print(1)', cell_id: 'c1', edit_mode: 'replace' }, 'allow'],
      ['WebFetch', { url: 'https://docs.python.org/3/', prompt: 'summarize' }, 'allow'],
      ['WebFetch', { url: 'http://169.254.169.254/latest/meta-data/', prompt: 'x' }, 'deny'],
      ['Grep', { pattern: 'TODO', path: '/home/dev/app/src', output_mode: 'content' }, 'allow'],
      ['Grep', { pattern: 'sk_live', path: '/home/dev/.aws' }, 'deny'],
      ['Glob', { pattern: '**/*.ts' }, 'allow'],
      ['Grep', { pattern: '.', glob: '.env*', output_mode: 'content' }, 'deny'],
      ['Grep', { pattern: 'TODO', glob: '*.ts', path: '/home/dev/app/src' }, 'allow'],
      ['Glob', { pattern: '**/.ssh/id_*', path: '/home/dev' }, 'deny'],
      ['mcp__filesystem__read_file', { path: '/home/dev/app/src/index.ts' }, 'allow'],
      ['mcp__github__merge_pull_request', { owner: 'acme', repo: 'app', pullNumber: 412 }, 'ask'],
      ['mcp__postgres__query', { sql: 'DROP DATABASE production' }, 'deny'],
      ['Task', { prompt: 'x', description: 'y', subagent_type: 'general' }, 'deny'],
    ];
    for (const [tool, input, want] of cases) {
      const r = runHook(payload(tool, input));
      assert.equal(r.status, 0, `${tool}: ${r.stderr}`);
      assert.equal(r.out.permissionDecision, want, `${tool} ${JSON.stringify(input)}: ${r.out.permissionDecisionReason}`);
      assert.ok(r.out.permissionDecisionReason.length > 0);
    }
  });

  it('blocks (exit 2, reason on stderr) on anything it cannot handle', () => {
    const bad: (string | Buffer)[] = [
      '',
      'not json',
      Buffer.from([0x7b, 0xff, 0x7d]),
      JSON.stringify({ hook_event_name: 'PreToolUse', tool_name: 'Bash' }),
      payload('Bash', {}),
      payload('Read', { file_path: 42 }),
      payload('Bash', { command: 'ls' }, { hook_event_name: 'Stop' }),
      payload('Bash', { command: 'ls' }, { cwd: 'relative/dir' }),
    ];
    for (const input of bad) {
      const r = runHook(input);
      assert.equal(r.status, 2, `${String(input).slice(0, 80)} → ${r.status} ${r.stdout}`);
      assert.match(r.stderr, /Gatehouse blocked this call: ./);
      assert.equal(r.stdout, '');
    }
  });

  it('halts the session on a stop-class failure, across hook processes, until a reviewer resumes it', () => {
    const data = join(mkdtempSync(join(tmpdir(), 'gatehouse-hook-stop-')), 'data');
    const pre = (session: string, id: string, command: string) => runHook(payload('Bash', { command }, { session_id: session, tool_use_id: id }), [], data);
    assert.equal(pre('s1', 't1', 'psql -h db -c "select 1"').out.permissionDecision, 'allow');
    const stop = runHook(result('s1', 't1', 'Exit code 2\npsql: error: connection to server failed: FATAL:  password authentication failed for user "app"'), [], data);
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(stop.whole.continue, false, 'Claude is told to stop');
    assert.match(stop.whole.stopReason, /halted this session: a stop-class error: authentication-failed.*The task is over/);
    const next = pre('s1', 't2', 'grep -r PGPASSWORD .');
    assert.equal(next.out.permissionDecision, 'deny');
    assert.match(next.out.permissionDecisionReason, /the session is halted: a stop-class error: authentication-failed/);
    assert.equal(runHook(payload('Task', { prompt: 'find another token' }, { session_id: 's1' }), [], data).out.permissionDecision, 'deny');
    assert.equal(pre('s2', 't3', 'git status').out.permissionDecision, 'allow', 'another Claude Code session is its own');
    const records = gatehouse(['audit', 'export', '--jsonl', '--data', data]).stdout.trim().split('\n').map((l) => JSON.parse(l));
    const story = records.filter((r) => ['decision', 'outcome', 'session.halted'].includes(r.type)).map((r) => `${r.type}:${r.verdict ?? r.class ?? ''}`);
    assert.deepEqual(story.slice(0, 4), ['decision:allow', 'outcome:authentication-failed', 'session.halted:', 'decision:deny']);
    // only a reviewer resumes it
    const reviewer = JSON.parse(gatehouse(['reviewer', 'add', 'lead', '--json', '--data', data]).stdout).token as string;
    const session = records.find((r) => r.type === 'session.halted').session as string;
    const resumed = gatehouse(['session', 'resume', session, '--reason', 'the password was rotated', '--data', data], undefined, { GATEHOUSE_REVIEWER_TOKEN: reviewer });
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.equal(pre('s1', 't4', 'git status').out.permissionDecision, 'allow');
  });

  it('stops a retry loop at its budget, not at 754', () => {
    const data = join(mkdtempSync(join(tmpdir(), 'gatehouse-hook-retry-')), 'data');
    let stopped = 0;
    for (let i = 1; i <= 10 && stopped === 0; i++) {
      const pre = runHook(payload('Bash', { command: 'npm run build' }, { session_id: 'r1', tool_use_id: `u${i}` }), [], data);
      if (pre.out.permissionDecision !== 'allow') break;
      const post = runHook(result('r1', `u${i}`, 'Exit code 1\nnpm error Missing script: "build"'), [], data);
      if (post.whole.continue === false) stopped = i;
      else assert.match(post.out.additionalContext, /validation: you may retry/);
    }
    assert.equal(stopped, 4, 'the validation class allows 3 failures of the same action; the 4th is a stop');
  });

  it('keeps the sessions on a gateway with --gateway: the gateway halts, and the next call is denied', async () => {
    const gw = await startGateway();
    try {
      const token = addAgent(gw.dir, 'claude');
      const data = join(mkdtempSync(join(tmpdir(), 'gatehouse-hook-gw-')), 'data');
      const run = (input: string) => {
        const r = gatehouse(['hook', 'claude-code', '--gateway', gw.url, '--data', data], input, { HOME: '/home/dev', GATEHOUSE_AGENT_TOKEN: token });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout);
      };
      assert.equal(run(payload('Bash', { command: 'git status' }, { session_id: 'g1', tool_use_id: 'g-1' })).hookSpecificOutput.permissionDecision, 'allow');
      const stop = run(result('g1', 'g-1', 'Exit code 1\nerror: 403 Forbidden: permission denied to push'));
      assert.equal(stop.continue, false);
      const next = run(payload('Bash', { command: 'git status' }, { session_id: 'g1', tool_use_id: 'g-2' }));
      assert.equal(next.hookSpecificOutput.permissionDecision, 'deny');
      assert.match(next.hookSpecificOutput.permissionDecisionReason, /halted: a stop-class error: permission-denied/);
      const sessions = (await call(`${gw.url}/v1/sessions`, { token: gw.reviewerToken as string })).body.sessions as { state: string }[];
      assert.deepEqual(sessions.map((x) => x.state), ['halted'], 'the gateway holds the state');
    } finally {
      await gw.stop();
    }
  });

  it('blocks when its policy is broken', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-hook-'));
    const policy = join(dir, 'p.yaml');
    writeFileSync(policy, 'version: 1\nrules:\n  - id: x\n    verdict: allow\n');
    const r = runHook(payload('Bash', { command: 'git status' }), ['--policy', policy]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /p\.yaml:3/);
  });
});
