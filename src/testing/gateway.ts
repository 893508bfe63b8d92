import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BIN, gatehouse } from './process.js';

/**
 * A real gateway process for tests: `bin/gatehouse serve --port 0 --json` on a temporary data
 * directory, with helpers to register agents, open sessions and send actions. Test support only.
 */

export interface RunningGateway {
  url: string;
  dir: string;
  proc: ChildProcess;
  /** The first-start reviewer's token (null when the data directory already had reviewers). */
  reviewerToken: string | null;
  /** The start-up line, parsed. */
  start: Record<string, unknown>;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Sends `signal` and resolves with the exit code once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startGateway(options: { dir?: string; args?: string[]; env?: Record<string, string>; command?: string[] } = {}): Promise<RunningGateway> {
  const dir = options.dir ?? join(mkdtempSync(join(tmpdir(), 'gatehouse-gw-')), 'data');
  const argv = [...(options.command ?? [BIN]), 'serve', '--port', '0', '--json', '--data', dir, ...(options.args ?? [])];
  const proc = spawn(argv[0] as string, argv.slice(1), { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    rl.once('line', (l) => resolve(l));
    void exited.then((code) => reject(new Error(`the gateway exited (${code}) before it listened:\n${err}`)));
  });
  const start = JSON.parse(line) as { listening: string; reviewer?: { token: string } };
  return {
    url: start.listening, dir, proc, reviewerToken: start.reviewer?.token ?? null, start,
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Registers an agent with the CLI and returns its token. */
export function addAgent(dir: string, name: string, environment = 'staging'): string {
  const r = gatehouse(['agent', 'add', name, '--environment', environment, '--json', '--data', dir]);
  if (r.status !== 0) throw new Error(`agent add failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { token: string }).token;
}

/** A JSON request; returns the status and the parsed body. */
export async function call(url: string, init: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(url, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers, body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body };
}

/** Opens a session for an agent token. */
export async function openSession(url: string, agentToken: string, task = 'test task'): Promise<{ session: string; token: string }> {
  const r = await call(`${url}/v1/sessions`, { token: agentToken, body: { task } });
  if (r.status !== 201) throw new Error(`session open failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as { session: string; token: string };
}
