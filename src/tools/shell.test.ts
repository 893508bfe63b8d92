import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { BIN, gatehouse } from '../testing/process.js';

const hasSandbox = spawnSync('bwrap', ['--version']).status === 0 && spawnSync('socat', ['-V']).status === 0;
const SECRET = 'ghp_1234567890abcdefghijABCDEFGHIJklmnop';
const text = (r: unknown) => ((r as { content: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('\n');

describe('shell_exec in the sandbox', { skip: hasSandbox ? false : 'needs Debian bubblewrap and socat (.ci/run installs them)' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'gatehouse-shell-'));
  const ws = join(root, 'ws');
  const data = join(root, 'data');
  let client: Client;
  let open: Client;
  const run = async (c: Client, command: string) => c.callTool({ name: 'shell_exec', arguments: { command } }, undefined, { timeout: 30_000 });
  const connect = async (args: string[]) => {
    const c = new Client({ name: 'gatehouse-test', version: '1.0.0' });
    await c.connect(new StdioClientTransport({ command: BIN, args: ['tools', '--workspace', ws, ...args], env: { ...process.env, SECRET_TOKEN: SECRET } as Record<string, string>, stderr: 'ignore' }));
    return c;
  };

  before(async () => {
    mkdirSync(ws);
    // the default policy for the judged path; a policy that allows any command for the limits (the point is what the sandbox stops)
    const anything = join(root, 'anything.yaml');
    // every failure recoverable and no breaker: these tests hit the sandbox's walls on purpose, one after another
    writeFileSync(anything, 'version: 1\nlimits: { breaker: { minFailures: 1000 } }\nerrors:\n  - { id: walls, action: recover, retry: { budget: 100, backoffSeconds: 0 }, match: { text: [\'.\'] } }\nrules:\n  - { id: any-command, verdict: allow, kind: [shell, file_read, file_write, http] }\n');
    client = await connect(['--data', data, '--exec-timeout', '3']);
    open = await connect(['--data', join(root, 'data-open'), '--policy', anything, '--exec-timeout', '3', '--max-file', '1048576', '--max-output', '65536', '--max-processes', '64', '--max-memory', String(64 << 20)]);
  });
  after(async () => {
    await client?.close();
    await open?.close();
  });

  it('runs what the policy allows in the workspace, and denies the rest without running it', async () => {
    const ok = await run(client, 'echo hello > greeting.txt && cat greeting.txt');
    assert.equal(ok.isError, undefined, text(ok));
    assert.match(text(ok), /^hello\n\[exit 0\]$/);
    const denied = await run(client, 'rm -rf ~');
    assert.equal(denied.isError, true);
    assert.match(text(denied), /denied this command \(rule shell-delete-root-or-home\)/);
    const records = gatehouse(['audit', 'export', '--jsonl', '--data', data]).stdout;
    assert.match(records, /"type":"outcome"/);
  });

  it('keeps writes in the workspace, hides homes and gives no credential to the command', async () => {
    const outside = join(tmpdir(), `gatehouse-outside-${process.pid}.txt`);
    const w = await run(open, `echo x > ${outside}; echo x > /usr/local/gatehouse-x`);
    assert.match(text(w), /Read-only file system/);
    assert.ok(!existsSync(outside), 'nothing written outside the workspace reaches the host');
    assert.ok(!existsSync('/usr/local/gatehouse-x'));
    const env = await run(open, 'printenv');
    assert.doesNotMatch(text(env), /SECRET_TOKEN|ghp_/, 'the environment is scrubbed');
    assert.match(text(env), new RegExp(`HOME=${ws}`));
    const hidden = await run(open, 'find /root /home -mindepth 1 | wc -l');
    assert.match(text(hidden), /^0\n/, 'homes are hidden (empty)');
    mkdirSync(join(ws, '.git', 'hooks'), { recursive: true });
    mkdirSync(join(ws, 'sub'));
    const hook = await open.callTool({ name: 'shell_exec', arguments: { command: 'echo evil > ../.git/hooks/pre-commit; echo x >> ../.git/config', cwd: 'sub' } });
    assert.match(text(hook), /Read-only file system|Permission denied/, 'the workspace\'s git hooks and config stay protected from a subdirectory too');
    assert.ok(!existsSync(join(ws, '.git', 'hooks', 'pre-commit')));
    symlinkSync('/etc', join(ws, 'etc-link'));
    const escaped = await open.callTool({ name: 'shell_exec', arguments: { command: 'touch x', cwd: 'etc-link' } });
    assert.match(text(escaped), /outside the workspace/, 'a symbolic link out of the workspace is not a workspace');
    // a secret the command prints (built at run time: a literal one in the command is a credential not issued to the session)
    const masked = await run(open, `printf 'gh%s_%s\\n' p ${SECRET.slice(4)}`);
    assert.doesNotMatch(text(masked), /ghp_/, 'secrets in the output are masked');
    assert.match(text(masked), /REDACTED/);
  });

  it('kills a command at its limits: time, output, file size, processes', async () => {
    const slow = await run(open, 'sleep 30');
    assert.match(text(slow), /killed: it ran past 3 s/);
    const loud = await run(open, 'yes');
    assert.match(text(loud), /killed: its output passed the limit/);
    const big = await run(open, 'yes > big.txt; echo done');
    assert.ok(statSync(join(ws, 'big.txt')).size <= 1048576, 'one file stops at --max-file');
    assert.match(text(big), /File size limit exceeded|done/);
    const started = Date.now();
    const bomb = await run(open, 'f() { f | f & }; f; sleep 30');
    assert.equal(bomb.isError, true);
    assert.match(text(bomb), /fork: (retry: )?Resource temporarily unavailable|Cannot fork/, 'the process cap is what stopped it');
    assert.ok(Date.now() - started < 15_000, 'the fork bomb is stopped, and the call returns');
    const hog = await run(open, 'a=$(head -c 200000000 /dev/zero | tr "\\0" x); echo kept ${#a}');
    assert.doesNotMatch(text(hog), /kept 200000000/, 'a shell variable of 200 MB does not fit in 64 MiB');
    assert.match(text(hog), /\[killed: it passed its memory limit\]/);
    const ram = await run(open, 'for i in $(seq 1 200); do head -c 1000000 /dev/zero > /tmp/fill$i; done; du -sb /tmp');
    assert.match(text(ram), /\[killed: it passed its memory limit\]/, 'the RAM-backed /tmp is inside the memory limit');
    const after = await run(open, 'echo still fine');
    assert.match(text(after), /still fine/);
  });
});
