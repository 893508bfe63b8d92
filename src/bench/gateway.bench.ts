import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore } from '../store/sqlite/store.js';
import { corpusCases } from '../testing/corpus.js';
import type { LoadConfig, LoadResult, Percentiles } from './load.js';

/**
 * The gateway benchmark: decisions per second and latency through `POST /v1/sessions/{id}/actions`
 * of the real server (`bin/gatehouse serve`, its own process, on loopback) with durable audit,
 * driven by a load generator in a second process (`load.ts`). Side by side, measured in the same
 * run: the audit append rate alone (in this process, group commit through `SqliteStore.batched`),
 * and the same load against `GET /healthz` of the same server (the HTTP floor: Hono + node:http
 * + the client, without decision or audit).
 *
 * Phases: audit baseline → server start → warm-up → open loop at RATE/s (healthz, then actions)
 * → closed loop at each of CONNECTIONS (healthz, then actions) → server stop → `audit verify`.
 * Writes bench-results/gateway.json.
 *
 * Options (environment): RATE (default 1000), BENCH_SECONDS per actions phase (default 10; healthz
 * phases take half), CONNECTIONS (default "16,64"), SESSIONS (default 8), SERVER_NODE_FLAGS (for
 * the server process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), KEEP=1 keeps the data dir.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'gatehouse');
const LOAD = fileURLToPath(new URL('./load.js', import.meta.url));

const RATE = Number(process.env.RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = (process.env.CONNECTIONS ?? '16,64').split(',').map(Number).filter((n) => n > 0);
const SESSIONS = Number(process.env.SESSIONS ?? 8);
const SERVER_FLAGS = (process.env.SERVER_NODE_FLAGS ?? '').split(/\s+/).filter((s) => s !== '');
const AIM = { openLoopRate: 1000, p99Ms: 2, auditedDecisionsPerSecond: 5000 };

const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Action bodies from the corpus: the action's own fields and `id`, plus the agent's `reason`. */
function loadBodies(): Record<string, unknown>[] {
  let lines: Record<string, unknown>[];
  try {
    lines = corpusCases().map((x) => x.c);
  } catch {
    lines = readFileSync(join(root, 'examples', 'actions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    progress('no shared corpus beside the checkout; using examples/actions.jsonl');
  }
  return lines.map((c) => {
    const { expect: _e, why: _w, ...rest } = c;
    return { ...rest, reason: `benchmark: ${String(c.id)}` };
  });
}

// ── the server process ─────────────────────────────────────────────────────────────────────────

interface Server { child: ChildProcess; url: string; stderr: () => string; exited: Promise<number | null> }

async function startServer(dataDir: string): Promise<Server> {
  // the built-in policy, with the rate caps out of the way: the benchmark measures decisions, not the cap's denials
  const benchPolicy = join(dataDir, '..', 'bench-policy.yaml');
  writeFileSync(benchPolicy, `${readFileSync(join(root, 'policies', 'default.yaml'), 'utf8')}\nlimits: {actionsPerMinute: {session: 100000000, agent: 100000000}}\n`);
  const child = spawn(process.execPath, [...SERVER_FLAGS, BIN, 'serve', '--port', '0', '--json', '--data', dataDir, '--policy', benchPolicy], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString('utf8')).slice(-16_384);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start in 30 s: ${err}`)), 30_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening: ${err}`));
    });
  });
  const startup = JSON.parse(line) as { listening?: string };
  if (typeof startup.listening !== 'string') throw new Error(`unexpected start-up line: ${line}`);
  child.stdout?.resume(); // keep draining
  return { child, url: startup.listening, stderr: () => err, exited };
}

async function stopServer(s: Server): Promise<number | null> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.child.exitCode;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 20_000);
  const code = await s.exited;
  clearTimeout(timer);
  return code;
}

/** The process's CPU time so far, seconds (user + system, all threads), from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// ── the load generator process ─────────────────────────────────────────────────────────────────

/** Busy and total CPU time of the whole machine so far, seconds summed over cores (/proc/stat). */
function machineCpu(): { busy: number; total: number } {
  try {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((x, y) => x + y, 0); // user nice system idle iowait irq softirq steal
    return { busy: (total - (f[3] ?? 0) - (f[4] ?? 0)) / 100, total: total / 100 };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

interface Snapshot { server: number; client: number; machine: { busy: number; total: number }; at: number }

interface Phase {
  name: string;
  target: 'actions' | 'healthz';
  /** Actions the server had answered before this phase (secretlint's profiler slows each one down by how many came before). */
  actionsBefore: number;
  load: LoadResult;
  /** CPU over the measured window, in % of one core: the server, the load generator, everything else on the machine. */
  cpu: { serverPercent: number; clientPercent: number; othersPercent: number; serverUsPerRequest: number };
}

let actionsSoFar = 0;

async function runPhase(name: string, server: Server, cfg: LoadConfig, target: Phase['target']): Promise<Phase> {
  progress(`${name} (${cfg.mode === 'open' ? `${cfg.rate}/s` : `${cfg.connections} connections`}, ${cfg.durationMs / 1000} s)`);
  const child = spawn(process.execPath, [LOAD, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const snap = (): Snapshot => ({ server: cpuSeconds(server.child.pid), client: cpuSeconds(child.pid), machine: machineCpu(), at: performance.now() });
  let first: Snapshot | null = null;
  let last: Snapshot | null = null;
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  // CPU over the measured window only: the load generator marks its start and end on stderr
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString('utf8');
    if (first === null && err.includes('mark:window-start\n')) first = snap();
    if (last === null && err.includes('mark:window-end\n')) last = snap();
  });
  // 'close', not 'exit': the result on stdout (and the markers on stderr) may still be in the pipes at exit
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  if (code !== 0) throw new Error(`the load generator failed (${code}): ${err}`);
  const load = JSON.parse(out) as LoadResult;
  const a = first as Snapshot | null;
  const b = last as Snapshot | null;
  let cpu = { serverPercent: NaN, clientPercent: NaN, othersPercent: NaN, serverUsPerRequest: NaN };
  if (a !== null && b !== null) {
    const wall = (b.at - a.at) / 1000;
    const srv = b.server - a.server;
    const cli = b.client - a.client;
    cpu = {
      serverPercent: Math.round((100 * srv) / wall), clientPercent: Math.round((100 * cli) / wall),
      othersPercent: Math.max(0, Math.round((100 * (b.machine.busy - a.machine.busy - srv - cli)) / wall)),
      serverUsPerRequest: load.ok + load.errorCount > 0 ? Math.round((srv * 1e6) / (load.ok + load.errorCount)) : NaN,
    };
  }
  const actionsBefore = actionsSoFar;
  if (target === 'actions') actionsSoFar += load.answeredAll;
  return { name, target, actionsBefore, load, cpu };
}

// ── the audit baseline (this process) ──────────────────────────────────────────────────────────

interface AuditBaseline { concurrency: number; seconds: number; records: number; commits: number; recordsPerSecond: number; commitsPerSecond: number; commitMs: Percentiles }

function simplePercentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  return { n: s.length, p50: round(at(0.5), 3), p90: round(at(0.9), 3), p99: round(at(0.99), 3), p999: round(at(0.999), 3), max: round(s[s.length - 1] as number, 3), mean: round(s.reduce((a, b) => a + b, 0) / s.length, 3) };
}

/** Appends decision-sized records through group commit, `concurrency` at a time, for `seconds`. */
async function auditBaseline(store: SqliteStore, bodies: Record<string, unknown>[], concurrency: number, seconds: number): Promise<AuditBaseline> {
  let n = 0;
  const record = () => {
    const action = bodies[n % bodies.length] as Record<string, unknown>;
    const { reason, id, ...act } = action;
    n++;
    return {
      time: new Date().toISOString(), type: 'decision', decision: `dec_bench${n}`, session: 'ses_bench', agent: 'bench', environment: 'staging',
      action: act, actionHash: 'f'.repeat(64), verdict: 'allow', rule: { id: 'bench-rule', file: 'policies/default.yaml', line: 1 },
      reasons: ['a typical reason of a typical length for the decision'], agentReason: reason, clientId: id, credentials: [],
    };
  };
  const commits: number[] = [];
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let records = 0;
  while (performance.now() < end) {
    const c0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, () => store.batched(() => store.audit.append(record()))));
    commits.push(performance.now() - c0);
    records += concurrency;
  }
  const wall = (performance.now() - t0) / 1000;
  return { concurrency, seconds: round(wall), records, commits: commits.length, recordsPerSecond: Math.round(records / wall), commitsPerSecond: Math.round(commits.length / wall), commitMs: simplePercentiles(commits) };
}

// ── the run ────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadavg().map((x) => round(x));
  const tmp = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const dataDir = join(tmp, 'data');
  let server: Server | null = null;
  const cleanup = () => {
    if (server !== null && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  };
  process.once('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      if (process.env.KEEP !== '1') rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    });
  }
  try {
    const bodies = loadBodies();
    const bodiesFile = join(tmp, 'bodies.json');
    writeFileSync(bodiesFile, JSON.stringify(bodies));
    progress(`load before: ${loadBefore.join(' ')}; ${bodies.length} actions; data in ${tmp}`);

    // 1. the audit append rate alone, before the server runs
    const audit: AuditBaseline[] = [];
    {
      const store = SqliteStore.open(join(tmp, 'audit-baseline'));
      try {
        for (const c of [1, 16, 64]) {
          progress(`audit append alone, ${c} per group commit (2 s)`);
          audit.push(await auditBaseline(store, bodies, c, 2));
        }
      } finally {
        store.close();
      }
    }

    // 2. the server, an agent, sessions
    progress('starting the gateway');
    server = await startServer(dataDir);
    const srv = server;
    const added = cli(['agent', 'add', 'bench', '--environment', 'staging', '--json', '--data', dataDir]);
    if (added.status !== 0) throw new Error(`agent add failed: ${added.stderr}`);
    const agentToken = (JSON.parse(added.stdout) as { token: string }).token;
    const sessions: { session: string; token: string }[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const res = await fetch(`${srv.url}/v1/sessions`, {
        method: 'POST', headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
        // the corpus assumes user dev in /home/dev/app; the session says so, so verdicts are the corpus's
        body: JSON.stringify({ task: 'bench', ttlSeconds: 1800, workspace: '/home/dev/app', home: '/home/dev' }),
      });
      if (res.status !== 201) throw new Error(`POST /v1/sessions: ${res.status} ${await res.text()}`);
      sessions.push((await res.json()) as { session: string; token: string });
    }
    const actionTargets = sessions.map((s) => ({ path: `/v1/sessions/${s.session}/actions`, token: s.token }));
    const healthTargets = [{ path: '/healthz' }];
    const ms = SECONDS * 1000;
    const actions = (mode: 'open' | 'closed', connections: number, durationMs: number, warmupMs: number): LoadConfig => ({ url: srv.url, method: 'POST', targets: actionTargets, bodiesFile, mode, rate: RATE, connections, durationMs, warmupMs, check: 'verdict', timeoutMs: 5000 });
    const health = (mode: 'open' | 'closed', connections: number, durationMs: number, warmupMs: number): LoadConfig => ({ url: srv.url, method: 'GET', targets: healthTargets, mode, rate: RATE, connections, durationMs, warmupMs, check: 'ok', timeoutMs: 5000 });

    // 3. the phases: each healthz phase right before its actions phase, same shape
    const phases: Phase[] = [];
    const warm = await runPhase('warm-up (JIT, WASM tiers, SQLite cache)', srv, actions('closed', 16, 3000, 0), 'actions');
    phases.push(await runPhase(`GET /healthz, open loop ${RATE}/s`, srv, health('open', 64, ms / 2 + 500, 500), 'healthz'));
    phases.push(await runPhase(`actions, open loop ${RATE}/s`, srv, actions('open', 64, ms + 1000, 1000), 'actions'));
    for (const c of CONNECTIONS) {
      phases.push(await runPhase(`GET /healthz, closed loop ×${c}`, srv, health('closed', c, ms / 2 + 500, 500), 'healthz'));
      phases.push(await runPhase(`actions, closed loop ×${c}`, srv, actions('closed', c, ms + 1000, 1000), 'actions'));
    }

    // 4. stop, verify the trail, count what it holds
    progress('stopping the gateway');
    const exitCode = await stopServer(srv);
    if (exitCode !== 0) progress(`the gateway exited with ${exitCode}: ${srv.stderr()}`);
    progress('audit verify');
    const v0 = performance.now();
    const verified = cli(['audit', 'verify', '--data', dataDir, '--json']);
    const verifySeconds = round((performance.now() - v0) / 1000);
    let verification: { ok: boolean; records: number; lastGoodCheckpoint: number | null; problems: unknown[] };
    try {
      verification = JSON.parse(verified.stdout) as typeof verification;
    } catch {
      throw new Error(`audit verify printed no JSON (${verified.status}): ${verified.stderr}`);
    }
    const db = new Database(join(dataDir, 'gatehouse.db'), { readonly: true });
    const byType = Object.fromEntries((db.prepare(`SELECT json_extract(record, '$.type') AS type, count(*) AS n FROM audit GROUP BY 1 ORDER BY 2 DESC`).all() as { type: string; n: number }[]).map((r) => [r.type, r.n]));
    db.close();
    // every answered action has its decision record (a request that timed out here may still have been decided, so ≥)
    const answered = [warm, ...phases].filter((p) => p.target === 'actions').reduce((a, p) => a + p.load.answeredAll, 0);

    // 5. report
    const loadAfter = loadavg().map((x) => round(x));
    const open = phases.find((p) => p.target === 'actions' && p.load.mode === 'open') as Phase;
    const best = Math.max(...phases.filter((p) => p.target === 'actions' && p.load.mode === 'closed').map((p) => p.load.perSecond));
    const auditBest = Math.max(...audit.map((a) => a.recordsPerSecond));
    const result = {
      when: new Date().toISOString(),
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, loadBefore, loadAfter },
      setup: { actions: bodies.length, sessions: SESSIONS, rate: RATE, seconds: SECONDS, connections: CONNECTIONS, serverNodeFlags: SERVER_FLAGS, durability: 'SQLite WAL, synchronous = FULL, group commit per event-loop turn', dataDir: process.env.KEEP === '1' ? tmp : null },
      unit: 'latency in ms; rates per second',
      auditAppendAlone: audit,
      phases: phases.map((p) => ({ name: p.name, target: p.target, actionsBefore: p.actionsBefore, cpu: p.cpu, ...p.load })),
      warmup: { perSecond: warm.load.perSecond, errors: warm.load.errors },
      auditTrail: { verify: verification, verifySeconds, byType, actionsAnswered: answered, decisionRecordsCoverAnswers: (byType.decision ?? 0) >= answered },
      aim: {
        ...AIM,
        openLoopP99Ms: open.load.latencyMs.p99, p99Met: open.load.latencyMs.p99 < AIM.p99Ms && open.load.errorCount === 0,
        bestClosedLoopDecisionsPerSecond: best, throughputMet: best >= AIM.auditedDecisionsPerSecond,
      },
      totalSeconds: 0,
    };
    result.totalSeconds = round((performance.now() - started) / 1000, 1);
    mkdirSync(join(root, 'bench-results'), { recursive: true });
    writeFileSync(join(root, 'bench-results', 'gateway.json'), JSON.stringify(result, null, 2) + '\n');

    const col = (x: unknown, w: number) => String(x).padStart(w);
    const head = `${'phase'.padEnd(36)} ${col('ok/s', 7)} ${col('p50', 7)} ${col('p90', 7)} ${col('p99', 7)} ${col('p99.9', 7)} ${col('max', 7)} ${col('errors', 6)} ${col('server', 7)} ${col('µs/req', 6)} ${col('client', 7)} ${col('others', 6)}`;
    const row = (p: Phase) => `${p.name.padEnd(36)} ${col(p.load.perSecond, 7)} ${col(p.load.latencyMs.p50, 7)} ${col(p.load.latencyMs.p90, 7)} ${col(p.load.latencyMs.p99, 7)} ${col(p.load.latencyMs.p999, 7)} ${col(p.load.latencyMs.max, 7)} ${col(p.load.errorCount, 6)} ${col(`${p.cpu.serverPercent}%`, 7)} ${col(p.cpu.serverUsPerRequest, 6)} ${col(`${p.cpu.clientPercent}%`, 7)} ${col(`${p.cpu.othersPercent}%`, 6)}`;
    const lines = [
      `gateway benchmark: POST /v1/sessions/{id}/actions on loopback, ${bodies.length} corpus actions over ${SESSIONS} sessions, durable audit (WAL, synchronous=FULL)`,
      `${result.machine.cpu}, ${result.machine.cores} cores, node ${process.version}; load average before ${loadBefore.join(' ')}, after ${loadAfter.join(' ')}`,
      '',
      `audit append alone (in-process, SqliteStore.batched + audit.append, decision-sized records)`,
      `${'records per group commit'.padEnd(36)} ${col('rec/s', 7)} ${col('commit/s', 8)} ${col('commit p50', 10)} ${col('p99 ms', 7)}`,
      ...audit.map((a) => `${String(a.concurrency).padEnd(36)} ${col(a.recordsPerSecond, 7)} ${col(a.commitsPerSecond, 8)} ${col(a.commitMs.p50, 10)} ${col(a.commitMs.p99, 7)}`),
      '',
      `load phases: ok/s = successful answers completed in the window; latency in ms of the successful requests sent in it (open loop: from the scheduled send time); CPU over the window in % of one core for the server (and its CPU µs per request), the load generator, and every other process on the machine`,
      head,
      ...phases.map(row),
      ...phases.filter((p) => p.load.mode === 'open').map((p) => `  ${p.name}: from the actual send p50 ${p.load.serviceMs?.p50} p99 ${p.load.serviceMs?.p99} ms; client send lag p50 ${p.load.sendLagMs?.p50} p99 ${p.load.sendLagMs?.p99} ms`),
      `  actions answered before each actions phase: ${phases.filter((p) => p.target === 'actions').map((p) => p.actionsBefore).join(', ')} (the warm-up's included)`,
      '',
      `audit trail: verify ${verification.ok ? 'ok' : 'FAILED'}, ${verification.records} records (${Object.entries(byType).map(([k, n]) => `${k} ${n}`).join(', ')}); ${answered} actions answered; verify took ${verifySeconds} s`,
      `aim: p99 < ${AIM.p99Ms} ms at ${AIM.openLoopRate}/s: ${open.load.latencyMs.p99} ms ${result.aim.p99Met ? 'MET' : 'NOT MET'}; ≥ ${AIM.auditedDecisionsPerSecond} audited decisions/s: ${best}/s ${result.aim.throughputMet ? 'MET' : 'NOT MET'} (audit append alone: up to ${auditBest}/s)`,
      `written to bench-results/gateway.json (${result.totalSeconds} s)`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    const noisy = phases.filter((p) => p.cpu.othersPercent > 20);
    if (noisy.length > 0) process.stdout.write(`WARNING: other processes used over 20% of a core during ${noisy.map((p) => `${p.name} (${p.cpu.othersPercent}%)`).join(', ')}: those figures are disturbed; run again on a quiet machine\n`);
    if (!result.auditTrail.decisionRecordsCoverAnswers) {
      process.stdout.write(`audit trail: fewer decision records (${byType.decision ?? 0}) than answered actions (${answered})\n`);
      process.exitCode = 1;
    }
    const errs = phases.filter((p) => p.load.errorCount > 0);
    if (errs.length > 0) process.stdout.write(`errors: ${errs.map((p) => `${p.name}: ${JSON.stringify(p.load.errors)}`).join('; ')}\n`);
    if (!verification.ok) {
      process.stdout.write(`audit verify FAILED: ${JSON.stringify(verification.problems).slice(0, 2000)}\n`);
      process.exitCode = 1;
    }
  } finally {
    if (server !== null) await stopServer(server);
    if (process.env.KEEP !== '1') rmSync(tmp, { recursive: true, force: true });
    else progress(`kept ${tmp}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
