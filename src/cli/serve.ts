import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { serve as listen } from '@hono/node-server';
import { loadParsers } from '../actions/classify.js';
import { Gateway } from '../gateway/gateway.js';
import { WebhookNotifier } from '../gateway/notify.js';
import { GatehouseError } from '../gatehouse-error.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { DEFAULT_POLICY_PATH, defaultPolicy, formatIssues, loadPolicyFile, loadPolicyText, type PolicyIssue } from '../policy/load.js';
import { createApp } from '../server/app.js';
import { Vault } from '../credentials/vault.js';
import { CredentialProxy } from '../enforcers/http-proxy/proxy.js';
import { listenForward } from '../enforcers/http-proxy/forward.js';
import type { Server } from 'node:http';
import { mintToken, tokenHash } from '../sessions/tokens.js';
import { signingKey } from '../store/sqlite/audit.js';
import { SqliteStore } from '../store/sqlite/store.js';
import { report, usage, wholeNumber, type Io } from './common.js';

export const SERVE_HELP = `Usage:
  gatehouse serve [--data DIR] [--policy FILE] [--host H] [--port N] [--webhook URL] [--json]

Runs the gateway: the agents' API, the reviewers' page and the audit trail.

Options:
  --data DIR         the data directory (default ./.gatehouse): SQLite store, audit signing key
  --policy FILE      the policy (default: the built-in policy); edits are picked up once the file
                     has been still for 0.3 s, and on SIGHUP (save atomically: write a new file and
                     rename it over); a policy that fails validation is rejected, the old one stays
  --host H           the address to listen on (default 127.0.0.1)
  --port N           the port (default 7800; 0 picks a free one)
  --public-url URL   the address reviewers reach, used in links (default http://HOST:PORT)
  --webhook URL      POST a Slack-compatible message for each new approval (default
                     $GATEHOUSE_WEBHOOK_URL); 5 tries with backoff
  --webhook-retry-ms N
                     the first retry's delay in ms (default 1000), doubled for each later one
  --max-body BYTES   largest request body (default 1048576); larger ones get 413
  --proxy-listen HOST:PORT
                     also serve the credential proxy as a forward proxy for plain http:// URLs
                     (HTTP_PROXY); https upstreams go through /proxy/{credential}/ on the gateway
  --checkpoint-seconds N
                     sign an audit checkpoint every N seconds (default 60) and on shutdown
  --json             print the start-up line as one JSON object

On first start it creates the data directory and a reviewer \`admin\`, and prints the reviewer's
sign-in link once. Register agents with \`gatehouse agent add NAME --environment ENV\`.
Stop with Ctrl-C or SIGTERM: in-flight decisions finish, a checkpoint is signed.
`;

/** `gatehouse serve`: resolves only when the gateway has stopped. */
export async function serveCommand(argv: string[], io: Io): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        data: { type: 'string' }, policy: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, 'public-url': { type: 'string' },
        webhook: { type: 'string' }, 'webhook-retry-ms': { type: 'string' }, 'max-body': { type: 'string' }, 'checkpoint-seconds': { type: 'string' },
        'proxy-listen': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }).values;
    if (values.help) {
      io.out(SERVE_HELP);
      return 0;
    }
  } catch (err) {
    return report(io, err, 'serve');
  }
  let store: SqliteStore;
  let policyFile: string | undefined;
  let policy: CompiledPolicy;
  let port: number, maxBody: number, checkpointSeconds: number, retryMs: number;
  const host = values.host ?? '127.0.0.1';
  const webhook = values.webhook ?? process.env.GATEHOUSE_WEBHOOK_URL;
  try {
    port = wholeNumber('port', values.port, 7800, 0, 65535);
    maxBody = wholeNumber('max-body', values['max-body'], 1024 * 1024, 1024, 64 * 1024 * 1024);
    checkpointSeconds = wholeNumber('checkpoint-seconds', values['checkpoint-seconds'], 60, 1, 60);
    retryMs = wholeNumber('webhook-retry-ms', values['webhook-retry-ms'], 1000, 1, 60_000);
    if (webhook !== undefined && !/^https?:\/\//.test(webhook)) throw usage('--webhook must be an http(s) URL');
    policyFile = values.policy === undefined ? undefined : resolve(values.policy);
    policy = policyFile === undefined ? defaultPolicy() : loadPolicyFile(policyFile);
    await loadParsers();
    store = SqliteStore.open(resolve(values.data ?? '.gatehouse'));
    signingKey(store.dir);
  } catch (err) {
    return report(io, err, 'serve');
  }

  let publicUrl = values['public-url'];
  const gw = new Gateway(store, () => policy, publicUrl ?? `http://${host}:${port}`);
  // real credentials: sealed in the store, revealed only by the credential proxy (GATEHOUSE_MASTER_KEY, or master.key in the data directory)
  const credentialProxy = new CredentialProxy(gw, new Vault(store), () => policy.credentials);
  const app = createApp(gw, { maxBodyBytes: maxBody, credentialProxy });
  const audit = (type: string, fields: Record<string, unknown>) => {
    try {
      store.transaction(() => store.audit.append({ time: new Date().toISOString(), type, ...fields }));
    } catch (err) {
      io.err(`gatehouse serve: could not record ${type}: ${(err as Error).message}\n`);
    }
  };
  const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');
  const policyFacts = (file: string) => ({ file, sha256: sha256(readFileSync(file)), rules: policy.rules.length });

  // first start: a reviewer to sign in with (lost? `gatehouse reviewer rotate admin` prints a new token)
  let reviewerToken: string | null = null;
  try {
    if (store.reviewers().length === 0) {
      const token = mintToken('reviewer');
      store.transaction(() => {
        store.addReviewer('admin', tokenHash(token), new Date().toISOString());
        store.audit.append({ time: new Date().toISOString(), type: 'reviewer.added', reviewer: 'admin', by: 'gatehouse serve (first start)' });
      });
      reviewerToken = token;
    }
  } catch (err) {
    store.close();
    return report(io, err, 'serve');
  }

  const server = await new Promise<ReturnType<typeof listen> | Error>((done) => {
    const s = listen({ fetch: app.fetch, hostname: host, port }, () => done(s));
    s.once('error', (err) => done(err));
  });
  if (server instanceof Error) {
    store.close();
    return report(io, new GatehouseError('listen_failed', `cannot listen on ${host}:${port}: ${(server as NodeJS.ErrnoException).code ?? server.message}`), 'serve');
  }
  let forward: Server | null = null;
  if (values['proxy-listen'] !== undefined) {
    const m = /^(.+):(\d+)$/.exec(values['proxy-listen']);
    try {
      if (m === null || Number(m[2]) > 65535) throw usage('--proxy-listen is HOST:PORT, e.g. 127.0.0.1:7801');
      forward = await listenForward(credentialProxy, m[1] as string, Number(m[2]), maxBody);
    } catch (err) {
      server.close();
      store.close();
      return report(io, err instanceof GatehouseError ? err : new GatehouseError('listen_failed', `cannot listen on ${values['proxy-listen']}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`), 'serve');
    }
  }
  const actualPort = (server.address() as AddressInfo).port;
  publicUrl ??= `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  gw.publicUrl = publicUrl;
  audit('gateway.started', { listening: `${host}:${actualPort}`, policy: policyFacts(policyFile ?? DEFAULT_POLICY_PATH) });

  const notifier = webhook === undefined ? null : new WebhookNotifier(gw, { url: webhook, baseDelayMs: retryMs });
  notifier?.start();

  // policy reload: on SIGHUP and when the file changes; an invalid policy never replaces a valid one.
  // The bytes parsed are the bytes hashed into the record; a file still being written (it changed
  // again within the settle time) waits for the next change.
  const reload = (why: string) => {
    const file = policyFile ?? DEFAULT_POLICY_PATH;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      audit('policy.rejected', { why, file, problems: [`cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`] });
      io.err(`gatehouse serve: POLICY REJECTED (${why}): cannot read ${file}; the previous policy stays in force\n`);
      return;
    }
    try {
      const next = loadPolicyText(text, file);
      policy = next;
      audit('policy.loaded', { why, policy: { file, sha256: sha256(text), rules: next.rules.length } });
      io.err(`gatehouse serve: policy reloaded (${why}): ${file}, ${next.rules.length} rules\n`);
    } catch (err) {
      const e = err as GatehouseError;
      const detail = e.code === 'policy_invalid' ? formatIssues(e.data.issues as PolicyIssue[]) : e.message;
      audit('policy.rejected', { why, file, sha256: sha256(text), problems: detail.split('\n').slice(0, 50) });
      io.err(`gatehouse serve: POLICY REJECTED (${why}); the previous policy stays in force:\n${detail}\n`);
    }
  };
  let watcher: FSWatcher | null = null;
  let debounce: NodeJS.Timeout | null = null;
  if (policyFile !== undefined) {
    const file = policyFile;
    let seen = '';
    const settle = () => {
      let now: string;
      try {
        now = readFileSync(file, 'utf8');
      } catch {
        now = '';
      }
      if (now !== seen) {
        seen = now;
        debounce = setTimeout(settle, 300);
        return;
      }
      reload('the file changed');
    };
    try {
      // the directory, not the file: an atomic save renames a new file over the old one
      watcher = watch(dirname(file), (_event, name) => {
        if (name !== null && name !== basename(file)) return;
        if (debounce) clearTimeout(debounce);
        seen = '\u0000';
        debounce = setTimeout(settle, 150);
      });
    } catch (err) {
      io.err(`gatehouse serve: cannot watch ${file} (${(err as Error).message}); reload with SIGHUP\n`);
    }
  }
  const onHup = () => reload('SIGHUP');
  process.on('SIGHUP', onHup);

  // time: expiries every second, checkpoints, and changes made by CLI commands beside the gateway
  let version = store.dataVersion();
  const tick = setInterval(() => {
    gw.expireDue().catch((err) => io.err(`gatehouse serve: expiry failed: ${(err as Error).message}\n`));
    try {
      const v = store.dataVersion();
      if (v !== version) {
        version = v;
        gw.emit('external');
      }
    } catch {
      // the store is failing; requests report it
    }
  }, 250);
  const checkpoints = setInterval(() => {
    try {
      gw.checkpoint();
    } catch (err) {
      io.err(`gatehouse serve: checkpoint failed: ${(err as Error).message}\n`);
    }
  }, checkpointSeconds * 1000);

  const forwardAt = forward === null ? null : `http://${values['proxy-listen']?.replace(/:\d+$/, '')}:${(forward.address() as AddressInfo).port}`;
  const startup: Record<string, unknown> = { listening: publicUrl, forwardProxy: forwardAt, data: store.dir, policy: policyFile ?? '(built-in default)', rules: policy.rules.length, webhook: webhook === undefined ? null : new URL(webhook).origin };
  if (reviewerToken !== null) startup.reviewer = { name: 'admin', token: reviewerToken, signIn: `${publicUrl}/#token=${reviewerToken}` };
  if (values.json) io.out(JSON.stringify(startup) + '\n');
  else {
    io.out(`Gatehouse listening on ${publicUrl}\n  data:   ${store.dir}\n  policy: ${startup.policy} (${policy.rules.length} rules)\n`);
    if (webhook !== undefined) io.out(`  webhook: ${new URL(webhook).origin}\n`);
    if (forwardAt !== null) io.out(`  forward proxy (plain http): ${forwardAt}\n`);
    if (reviewerToken !== null) io.out(`\nReviewer sign-in (shown once; keep it secret):\n  ${startup.reviewer && (startup.reviewer as { signIn: string }).signIn}\n`);
    io.out(`\nAgents: gatehouse agent add NAME --environment staging, then\n  curl -s -X POST ${publicUrl}/v1/sessions -H "Authorization: Bearer $AGENT_TOKEN" -H 'content-type: application/json' -d '{"task":"…"}'\n`);
  }
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') io.err(`gatehouse serve: listening on ${host} without TLS; put a TLS proxy in front before agents or reviewers use it over a network\n`);

  return new Promise<number>((done) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      clearInterval(tick);
      clearInterval(checkpoints);
      watcher?.close();
      process.off('SIGHUP', onHup);
      forward?.close();
      (forward as unknown as { closeAllConnections?: () => void } | null)?.closeAllConnections?.();
      await new Promise<void>((r) => {
        server.close(() => r());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await notifier?.stop();
      audit('gateway.stopped', { signal });
      try {
        gw.checkpoint();
      } catch (err) {
        io.err(`gatehouse serve: the closing checkpoint failed: ${(err as Error).message}\n`);
      }
      store.close();
      io.err(`gatehouse serve: stopped (${signal})\n`);
      done(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}
