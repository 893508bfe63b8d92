import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

/**
 * The credential proxy's added latency per request: the same undici client (one keep-alive
 * connection each) GETs a local upstream directly with the real credential, and through the
 * gateway's `/proxy/{credential}/…` with a phantom token (a real `gatehouse serve` process; allow
 * path, scope check, durable audit, the secret revealed and masked), in alternating rounds of one
 * run. Reports p50/p90/p99 of both and their differences. Writes bench-results/proxy.json.
 * Options: CALLS per side (default 3000), ROUNDS (default 6), SERVER_NODE_FLAGS (e.g. "--cpu-prof").
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'gatehouse');
const CALLS = Number(process.env.CALLS ?? 3000);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

const REAL = `sk_live_${randomBytes(18).toString('hex')}`;
const env = { ...process.env, GATEHOUSE_MASTER_KEY: randomBytes(32).toString('hex'), BENCH_REAL: REAL };
const upstream = createServer((req, res) => {
  if (req.headers.authorization !== `Bearer ${REAL}`) res.writeHead(401).end();
  else res.writeHead(200, { 'content-type': 'application/json' }).end('{"orders":[{"id":1,"total":"3.00"}]}');
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-proxy-bench-'));
const data = join(dir, 'data');
const policy = join(dir, 'policy.yaml');
writeFileSync(policy, `version: 1\nlimits: {actionsPerMinute: {session: 100000000, agent: 100000000}}\ncredentials:\n  shop:\n    agents: [bench]\n    upstream: ${upstreamUrl}\n    scope: [{methods: [GET], paths: ['/orders']}]\nrules:\n  - {id: local, verdict: allow, kind: http, host: 127.0.0.1}\n`);
const cli = (args: string[]) => {
  const r = spawnSync(BIN, [...args, '--data', data], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gatehouse ${args[0]} failed: ${r.stderr}`);
  return r.stdout;
};
const SERVER_FLAGS = (process.env.SERVER_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f !== '');
const server = spawn(process.execPath, [...SERVER_FLAGS, BIN, 'serve', '--port', '0', '--json', '--data', data, '--policy', policy], { env, stdio: ['ignore', 'pipe', 'inherit'] });
const started = JSON.parse(await new Promise<string>((resolve) => createInterface({ input: server.stdout }).once('line', resolve))) as { listening: string };
const agentToken = (JSON.parse(cli(['agent', 'add', 'bench', '--environment', 'staging', '--json'])) as { token: string }).token;
cli(['secret', 'add', 'shop', '--from-env', 'BENCH_REAL']);
const opened = await (await fetch(`${started.listening}/v1/sessions`, { method: 'POST', headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ task: 'proxy benchmark', ttlSeconds: 1800 }) })).json() as { credentials: { token: string }[] };
const phantom = opened.credentials[0]?.token as string;

const direct = new Agent({ connections: 1 });
const proxied = new Agent({ connections: 1 });
async function time(agent: Agent, url: string, token: string, n: number, into: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const res = await request(url, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
    await res.body.arrayBuffer();
    into.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
  }
}
function percentiles(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(s[s.length - 1] as number) };
}

progress(`${CALLS} GETs per side in ${ROUNDS} alternating rounds; load before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const directUrl = `${upstreamUrl}/orders`;
const proxyUrl = `${started.listening}/proxy/shop/orders`;
await time(direct, directUrl, REAL, 300, []);
await time(proxied, proxyUrl, phantom, 300, []);
const d: number[] = [];
const p: number[] = [];
const per = Math.ceil(CALLS / ROUNDS);
for (let round = 1; round <= ROUNDS; round++) {
  progress(`round ${round}/${ROUNDS}`);
  await time(direct, directUrl, REAL, per, d);
  await time(proxied, proxyUrl, phantom, per, p);
}
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
upstream.close();
await direct.close();
await proxied.close();
const a = percentiles(d);
const b = percentiles(p);
const diff = { p50: Math.round((b.p50 - a.p50) * 1000) / 1000, p90: Math.round((b.p90 - a.p90) * 1000) / 1000, p99: Math.round((b.p99 - a.p99) * 1000) / 1000 };
const row = (name: string, x: typeof a) => `${name.padEnd(22)} ${String(x.n).padStart(5)} ${x.p50.toFixed(3).padStart(8)} ${x.p90.toFixed(3).padStart(8)} ${x.p99.toFixed(3).padStart(8)} ${x.max.toFixed(3).padStart(8)}`;
process.stdout.write([
  `Credential proxy overhead: sequential GETs to a local upstream, keep-alive (${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, node ${process.version})`,
  'ms per request             n      p50      p90      p99      max',
  row('direct (real key)', a),
  row('through /proxy/shop', b),
  `added                        ${diff.p50.toFixed(3).padStart(8)} ${diff.p90.toFixed(3).padStart(8)} ${diff.p99.toFixed(3).padStart(8)}`,
  `aim: added p50 < 1 ms: ${diff.p50 < 1 ? 'met' : 'NOT MET'}`,
].join('\n') + '\n');
mkdirSync(join(root, 'bench-results'), { recursive: true });
writeFileSync(join(root, 'bench-results', 'proxy.json'), JSON.stringify({ direct: a, proxied: b, added: diff, calls: CALLS, rounds: ROUNDS, load: loadavg() }, null, 2));
rmSync(dir, { recursive: true, force: true });
