import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { GatehouseError } from '../gatehouse-error.js';
import type { LentCredential, OpenedSession } from '../gateway/gateway.js';
import { report, usage, type Io } from './common.js';

export const RUN_HELP = `Usage:
  gatehouse run --agent NAME [--task TEXT] [--gateway URL] [--ttl MINUTES] [--http-proxy URL]
                [--keep-env VAR]… -- COMMAND [ARGS…]

Runs an agent as a Gatehouse session: opens the session with the agent token in
$GATEHOUSE_AGENT_TOKEN (or --token), starts COMMAND with a scrubbed environment and the session's
phantom tokens, and closes the session — revoking every token — when COMMAND exits. If COMMAND is
killed by a signal, the session is halted instead, so a reviewer sees it.

The environment COMMAND gets:
  PATH HOME USER LOGNAME SHELL LANG LC_* TERM TZ TMPDIR COLORTERM NO_COLOR, and --keep-env VARs
  (refused when named like a credential); nothing else is inherited.
  GATEHOUSE_URL, GATEHOUSE_SESSION, GATEHOUSE_SESSION_TOKEN   the session, for the gateway's API
  one phantom token per credential the policy lends the agent, in the variable the policy names
  (credentials.NAME.env, e.g. GITHUB_TOKEN), and GATEHOUSE_PROXY_<NAME>: its proxy base URL
  (e.g. http://127.0.0.1:7800/proxy/github/): send requests there with the phantom token
  HTTP_PROXY / http_proxy, with --http-proxy (the gateway's --proxy-listen), for plain http://

Options:
  --agent NAME       the agent; its token must be this agent's
  --task TEXT        what the session is for (shown to reviewers; default: the command line)
  --gateway URL      the gateway (default $GATEHOUSE_URL or http://127.0.0.1:7800)
  --token T          the agent token (default $GATEHOUSE_AGENT_TOKEN); never passed to COMMAND
  --ttl MINUTES      session length (capped by the policy's sessions.maxTtlMinutes)

Exit status: COMMAND's own; 2 when the session cannot be opened (nothing was started).
`;

/** Variables COMMAND inherits: none of them carries a credential. */
const KEPT = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'TERM', 'TZ', 'TMPDIR', 'COLORTERM', 'NO_COLOR'];
const CREDENTIAL_NAME = /TOKEN|SECRET|PASSW|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH|COOKIE|SESSION/i;

/** `gatehouse run`: resolves with the command's exit status once its session is closed. */
export async function runCommand(argv: string[], io: Io): Promise<number> {
  let values;
  let command: string[];
  try {
    const parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        agent: { type: 'string' }, task: { type: 'string' }, gateway: { type: 'string' }, token: { type: 'string' }, ttl: { type: 'string' },
        'http-proxy': { type: 'string' }, 'keep-env': { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' },
      },
    });
    values = parsed.values;
    if (values.help) {
      io.out(RUN_HELP);
      return 0;
    }
    command = parsed.positionals;
    if (command.length === 0) throw usage('give the command to run after --: gatehouse run --agent NAME -- claude');
    if (values.agent === undefined) throw usage('name the agent: --agent NAME');
    if (values.ttl !== undefined && !/^\d{1,4}$/.test(values.ttl)) throw usage('--ttl is whole minutes');
    if (values['http-proxy'] !== undefined && !/^http:\/\/[^/]+\/?$/.test(values['http-proxy'])) throw usage('--http-proxy is http://HOST:PORT (the gateway\'s --proxy-listen)');
    for (const name of values['keep-env'] ?? []) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw usage(`--keep-env ${name} is not a variable name`);
      if (CREDENTIAL_NAME.test(name) || name.startsWith('GATEHOUSE_')) throw usage(`--keep-env ${name}: a variable named like a credential is not passed on; lend it through the policy's credentials`);
    }
  } catch (err) {
    return report(io, err, 'run');
  }
  const gateway = (values.gateway ?? process.env.GATEHOUSE_URL ?? 'http://127.0.0.1:7800').replace(/\/+$/, '');
  const agentToken = values.token ?? process.env.GATEHOUSE_AGENT_TOKEN;
  let opened: OpenedSession;
  try {
    if (agentToken === undefined || agentToken === '') throw usage('set GATEHOUSE_AGENT_TOKEN to the agent\'s token (`gatehouse agent add NAME` prints one), or give --token');
    opened = await api<OpenedSession>(gateway, '/v1/sessions', agentToken, {
      task: values.task ?? command.join(' ').slice(0, 4000),
      workspace: process.cwd(),
      ...(process.env.HOME?.startsWith('/') ? { home: process.env.HOME } : {}),
      ...(values.ttl === undefined ? {} : { ttlSeconds: Number(values.ttl) * 60 }),
    });
    if (opened.agent !== values.agent) {
      await api(gateway, `/v1/sessions/${opened.session}/close`, opened.token, {}).catch(() => undefined);
      throw new GatehouseError('forbidden', `the agent token is ${opened.agent}'s, not ${values.agent}'s; the session was closed`);
    }
  } catch (err) {
    // nothing was started: always 2, so a wrapper can tell it from the command's own status
    report(io, err, 'run');
    return 2;
  }
  const env = childEnv(process.env, values['keep-env'] ?? [], opened, gateway, values['http-proxy']);
  io.err(`gatehouse run: session ${opened.session} (${opened.agent}, ${opened.environment}) until ${opened.expires}; ${opened.credentials.length === 0 ? 'no credentials lent' : `lent ${opened.credentials.map(describe).join(', ')}`}\n`);

  return new Promise<number>((done) => {
    const child = spawn(command[0] as string, command.slice(1), { stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    const finish = async (code: number | null, signal: NodeJS.Signals | null, startError?: Error) => {
      for (const [s, h] of handlers) process.off(s, h);
      const path = signal === null && startError === undefined ? 'close' : 'halt';
      const reason = startError !== undefined ? `the agent process could not start: ${startError.message}` : `the agent process was killed by ${signal}`;
      try {
        await api(gateway, `/v1/sessions/${opened.session}/${path}`, opened.token, path === 'halt' ? { reason } : {});
        io.err(`gatehouse run: session ${opened.session} ${path === 'close' ? 'closed' : `halted (${reason})`}; its tokens are revoked\n`);
      } catch (err) {
        io.err(`gatehouse run: could not end session ${opened.session} (${(err as Error).message}); its tokens expire at ${opened.expires}\n`);
      }
      done(startError !== undefined ? 127 : code ?? 128 + (signal === null ? 0 : signalNumber(signal)));
    };
    child.once('error', (err) => void finish(null, null, err));
    child.once('exit', (code, signal) => void finish(code, signal));
  });
}

function describe(c: LentCredential): string {
  return `${c.name}${c.env === null ? '' : ` in $${c.env}`}`;
}

/** The scrubbed environment of the agent process (see RUN_HELP). */
function childEnv(parent: NodeJS.ProcessEnv, keep: string[], s: OpenedSession, gateway: string, httpProxy: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(parent)) {
    if (v === undefined) continue;
    if (KEPT.includes(k) || k.startsWith('LC_') || keep.includes(k)) env[k] = v;
  }
  env.GATEHOUSE_URL = gateway;
  env.GATEHOUSE_SESSION = s.session;
  env.GATEHOUSE_SESSION_TOKEN = s.token;
  for (const c of s.credentials) {
    if (c.env !== null) env[c.env] = c.token;
    env[`GATEHOUSE_PROXY_${c.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = c.proxy;
  }
  if (httpProxy !== undefined) {
    env.HTTP_PROXY = env.http_proxy = httpProxy;
    env.NO_PROXY = env.no_proxy = new URL(gateway).hostname;
  }
  return env;
}

/**
 * POSTs JSON to the gateway with a bearer token.
 * @throws GatehouseError with the gateway's error code, or `gateway_unreachable`.
 */
async function api<T = unknown>(gateway: string, path: string, token: string, body: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${gateway}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw new GatehouseError('gateway_unreachable', `cannot reach the gateway at ${gateway}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`);
  }
  const value = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  if (!res.ok) throw new GatehouseError(value.error?.code ?? 'gateway_error', `the gateway answered ${res.status}: ${value.error?.message ?? 'no reason given'}`);
  return value as T;
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 1;
}
