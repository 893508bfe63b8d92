import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

/**
 * The MCP proxy's added latency per `tools/call`: the same SDK client calls
 * `@modelcontextprotocol/server-everything`'s `echo` directly and through `gatehouse mcp`
 * (standalone, allow path, every call decided and audited durably in a local data directory),
 * in alternating rounds of one run. Reports p50/p90/p99 of both and their differences.
 * Writes bench-results/mcp.json. Options: CALLS per side (default 3000), ROUNDS (default 6).
 */

const require = createRequire(import.meta.url);
const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'gatehouse');
const CALLS = Number(process.env.CALLS ?? 3000);
const ROUNDS = Number(process.env.ROUNDS ?? 6);

async function connect(command: string, args: string[]): Promise<Client> {
  const client = new Client({ name: 'gatehouse-bench', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command, args, stderr: 'ignore' }));
  return client;
}

async function timeCalls(client: Client, n: number, into: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const r = await client.callTool({ name: 'echo', arguments: { message: `bench ${i}` } });
    into.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.isError) throw new Error(`echo failed: ${JSON.stringify(r.content)}`);
  }
}

function percentiles(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(s[s.length - 1] as number) };
}

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mcp-bench-'));
const policy = join(dir, 'policy.yaml');
writeFileSync(policy, 'version: 1\nlimits: {actionsPerMinute: {session: 100000000, agent: 100000000}}\nrules:\n  - { id: echo, verdict: allow, kind: mcp_tool, server: everything, tool: echo }\n');
const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
progress(`${CALLS} echo calls per side in ${ROUNDS} alternating rounds; load before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const direct = await connect('node', [EVERYTHING, 'stdio']);
const proxied = await connect(BIN, ['mcp', '--data', join(dir, 'data'), '--cwd', dir, '--policy', policy, '--', 'node', EVERYTHING, 'stdio']);
const d: number[] = [];
const p: number[] = [];
progress('warm-up');
await timeCalls(direct, 500, []);
await timeCalls(proxied, 500, []);
const per = Math.ceil(CALLS / ROUNDS);
for (let round = 1; round <= ROUNDS; round++) {
  progress(`round ${round}/${ROUNDS}`);
  await timeCalls(direct, per, d);
  await timeCalls(proxied, per, p);
}
await direct.close();
await proxied.close();
const a = percentiles(d);
const b = percentiles(p);
const diff = { p50: Math.round((b.p50 - a.p50) * 1000) / 1000, p90: Math.round((b.p90 - a.p90) * 1000) / 1000, p99: Math.round((b.p99 - a.p99) * 1000) / 1000 };
const lines = [
  `MCP proxy overhead: server-everything echo over stdio, SDK client, sequential calls (${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, node ${process.version})`,
  'ms per call                 n      p50      p90      p99      max',
  `direct                 ${String(a.n).padStart(5)} ${a.p50.toFixed(3).padStart(8)} ${a.p90.toFixed(3).padStart(8)} ${a.p99.toFixed(3).padStart(8)} ${a.max.toFixed(3).padStart(8)}`,
  `through gatehouse mcp  ${String(b.n).padStart(5)} ${b.p50.toFixed(3).padStart(8)} ${b.p90.toFixed(3).padStart(8)} ${b.p99.toFixed(3).padStart(8)} ${b.max.toFixed(3).padStart(8)}`,
  `added                        ${diff.p50.toFixed(3).padStart(8)} ${diff.p90.toFixed(3).padStart(8)} ${diff.p99.toFixed(3).padStart(8)}`,
  `aim: added p50 < 0.5 ms: ${diff.p50 < 0.5 ? 'met' : 'NOT MET'}; added p99 < 2 ms: ${diff.p99 < 2 ? 'met' : 'NOT MET'}`,
];
process.stdout.write(lines.join('\n') + '\n');
mkdirSync(join(root, 'bench-results'), { recursive: true });
writeFileSync(join(root, 'bench-results', 'mcp.json'), JSON.stringify({ direct: a, proxied: b, added: diff, calls: CALLS, rounds: ROUNDS, load: loadavg() }, null, 2));
rmSync(dir, { recursive: true, force: true });
