import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * The gateway benchmark's load generator (`gateway.bench.ts` spawns it, one process per phase, so
 * that the client's work never runs on the server's event loop). Plain `node:http` with a
 * keep-alive agent; no dependency.
 *
 * Run: `node dist/bench/load.js '<config JSON>'` (or the config in $LOAD_CONFIG). The result is one
 * JSON object on stdout ({@link LoadResult}); a failure exits 1 with the reason on stderr.
 *
 * Two modes:
 * - `open`: a fixed rate, scheduled by the clock. Each request's latency runs from the time it was
 *   *scheduled* to go, not from when it went, so a stalled server (or a late client) shows in the
 *   figures instead of silently slowing the schedule down (no coordinated omission).
 * - `closed`: `connections` workers, each sending its next request as soon as the last one
 *   answered: the most the server does with that many clients in flight.
 *
 * Requests sent during the first `warmupMs` are left out of every figure.
 */

export interface LoadConfig {
  /** `http://host:port` */
  url: string;
  method: 'GET' | 'POST';
  /** Request targets, used round robin: a path and its bearer token, if any. */
  targets: { path: string; token?: string }[];
  /** A JSON file holding an array of request bodies (POST), used round robin. */
  bodiesFile?: string;
  mode: 'open' | 'closed';
  /** Requests per second (open). */
  rate?: number;
  /** Concurrent connections: the workers (closed), the most sockets (open). */
  connections: number;
  durationMs: number;
  warmupMs: number;
  /** What makes a 200 a success: a `verdict` of allow/ask/deny, or `ok: true`. */
  check: 'verdict' | 'ok';
  /** A request without an answer this long after it was sent is an error, `timeout` (default 10 s). */
  timeoutMs?: number;
}

export interface Percentiles { n: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number }

export interface LoadResult {
  mode: 'open' | 'closed';
  rate: number | null;
  connections: number;
  /** The measured window in seconds (after the warm-up). */
  seconds: number;
  /** Requests scheduled/started in the window. */
  sent: number;
  /** Successful answers (200 and the check held) to the requests sent in the window. */
  ok: number;
  /** Everything else, by kind: `status:503`, `network:ECONNRESET`, `timeout`, `no-verdict`. */
  errors: Record<string, number>;
  errorCount: number;
  /** Successful answers completed inside the window, per second (open loop: what the server kept up with, whatever the offered rate). */
  perSecond: number;
  /** Milliseconds, successful requests only. Open loop: from the scheduled send time. */
  latencyMs: Percentiles;
  /** Open loop only: how late the client sent, in ms (its own lag, included in latencyMs). */
  sendLagMs: Percentiles | null;
  /** Open loop only: latency from the actual send, in ms (what the server and the socket took). */
  serviceMs: Percentiles | null;
  /** Answers completed in each second of the window: stalls show as dips. */
  timeline: number[];
  verdicts: Record<string, number>;
  /** Successful answers over the whole run, warm-up and tail included. */
  answeredAll: number;
  /** The load generator's own CPU time over the whole run, seconds (user + system). */
  clientCpuSeconds: number;
}

function percentiles(xs: Float64Array): Percentiles {
  const s = Float64Array.from(xs).sort();
  const n = s.length;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  if (n === 0) return { n: 0, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN };
  const at = (q: number) => s[Math.min(n - 1, Math.floor(q * n))] as number;
  let total = 0;
  for (const x of s) total += x;
  return { n, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), p999: round(at(0.999)), max: round(s[n - 1] as number), mean: round(total / n) };
}

/** A growable array of doubles. */
class Samples {
  private buf = new Float64Array(1 << 16);
  length = 0;
  push(x: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = x;
  }
  values(): Float64Array {
    return this.buf.subarray(0, this.length);
  }
}

type Outcome = { ok: true; verdict: string } | { ok: false; error: string };

async function runLoad(cfg: LoadConfig): Promise<LoadResult> {
  const base = new URL(cfg.url);
  const bodies: Buffer[] = cfg.bodiesFile === undefined ? [] : (JSON.parse(readFileSync(cfg.bodiesFile, 'utf8')) as unknown[]).map((b) => Buffer.from(JSON.stringify(b)));
  if (cfg.method === 'POST' && bodies.length === 0) throw new Error('a POST run needs bodiesFile with at least one body');
  if (cfg.targets.length === 0) throw new Error('no targets');
  const headers = cfg.targets.map((t) => {
    const h: Record<string, string> = { accept: 'application/json' };
    if (t.token !== undefined) h.authorization = `Bearer ${t.token}`;
    if (cfg.method === 'POST') h['content-type'] = 'application/json';
    return h;
  });
  const agent = new Agent({ keepAlive: true, maxSockets: cfg.connections, maxFreeSockets: cfg.connections, scheduling: 'fifo' });
  const timeoutMs = cfg.timeoutMs ?? 10_000;
  let answeredAll = 0;

  const send = (i: number): Promise<Outcome> => new Promise<Outcome>((resolve) => {
    const t = i % cfg.targets.length;
    const body = cfg.method === 'POST' ? bodies[i % bodies.length] as Buffer : undefined;
    const h = body === undefined ? headers[t] : { ...headers[t], 'content-length': String(body.length) };
    let settled = false;
    // a wall-clock limit from the send, so a request still queued for a socket times out too
    const timer = setTimeout(() => {
      finish({ ok: false, error: 'timeout' });
      req.destroy();
    }, timeoutMs);
    const finish = (o: Outcome) => {
      if (!settled) {
        settled = true;
        if (o.ok) answeredAll++;
        clearTimeout(timer);
        resolve(o);
      }
    };
    const req = request({ agent, hostname: base.hostname, port: base.port, method: cfg.method, path: (cfg.targets[t] as { path: string }).path, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: `network:${err.code ?? err.message}` }));
      res.on('end', () => {
        if (res.statusCode !== 200) return finish({ ok: false, error: `status:${res.statusCode}` });
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          return finish({ ok: false, error: 'bad-json' });
        }
        if (cfg.check === 'ok') return finish(parsed.ok === true ? { ok: true, verdict: 'ok' } : { ok: false, error: 'not-ok' });
        const v = parsed.verdict;
        return finish(v === 'allow' || v === 'ask' || v === 'deny' ? { ok: true, verdict: v } : { ok: false, error: 'no-verdict' });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: `network:${err.code ?? err.message}` }));
    req.end(body);
  });

  const latency = new Samples();
  const lag = new Samples();
  const service = new Samples();
  const errors: Record<string, number> = {};
  const verdicts: Record<string, number> = {};
  const seconds = (cfg.durationMs - cfg.warmupMs) / 1000;
  const timeline = new Array<number>(Math.ceil(seconds)).fill(0);
  let sent = 0;
  let ok = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now() + 20;
  const windowStart = start + cfg.warmupMs;
  const end = start + cfg.durationMs;
  // markers for whoever watches the server's CPU over the window
  const mark = (what: string) => process.stderr.write(`mark:${what}\n`);
  const m1 = setTimeout(() => mark('window-start'), Math.max(0, windowStart - performance.now()));
  const m2 = setTimeout(() => mark('window-end'), Math.max(0, end - performance.now()));

  const record = (o: Outcome, from: number, done: number, sentAt = from) => {
    // throughput: every success that completes inside the window, whenever it was sent
    const sec = Math.floor((done - windowStart) / 1000);
    if (o.ok && done <= end && sec >= 0 && sec < timeline.length) timeline[sec] = (timeline[sec] as number) + 1;
    // latency and errors: the requests sent (or, open loop, scheduled) inside the window
    if (from < windowStart) return;
    sent++;
    if (o.ok) {
      ok++;
      latency.push(done - from);
      service.push(done - sentAt);
      verdicts[o.verdict] = (verdicts[o.verdict] ?? 0) + 1;
    } else errors[o.error] = (errors[o.error] ?? 0) + 1;
  };

  if (cfg.mode === 'open') {
    const rate = cfg.rate ?? 0;
    if (!(rate > 0)) throw new Error('an open-loop run needs a rate');
    const interval = 1000 / rate;
    const total = Math.floor((cfg.durationMs / 1000) * rate);
    await new Promise<void>((done) => {
      let next = 0;
      let inFlight = 0;
      const fire = (i: number, scheduled: number) => {
        const now = performance.now();
        if (scheduled >= windowStart) lag.push(now - scheduled);
        inFlight++;
        void send(i).then((o) => {
          record(o, scheduled, performance.now(), now);
          inFlight--;
          if (next >= total && inFlight === 0) done();
        });
      };
      // Each tick sends every request whose time has come. Timers are only good to about a
      // millisecond, so the last 2 ms before a send are spun out with setImmediate (which still
      // lets answers in): the client then sends within tens of µs of the schedule, at the price
      // of keeping its own core busy at high rates.
      const tick = () => {
        const now = performance.now();
        while (next < total && start + next * interval <= now) {
          fire(next, start + next * interval);
          next++;
        }
        if (next < total) {
          const wait = start + next * interval - performance.now();
          if (wait > 2) setTimeout(tick, wait - 1.5);
          else setImmediate(tick);
        } else if (inFlight === 0) done();
      };
      setTimeout(tick, Math.max(0, start - performance.now()));
    });
  } else {
    let i = 0;
    await new Promise<void>((r) => setTimeout(r, Math.max(0, start - performance.now())));
    const worker = async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const o = await send(i++);
        const t1 = performance.now();
        if (t1 <= end) record(o, t0, t1);
      }
    };
    await Promise.all(Array.from({ length: cfg.connections }, worker));
  }
  clearTimeout(m1);
  clearTimeout(m2);
  agent.destroy();
  const cpu = process.cpuUsage(cpu0);
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    mode: cfg.mode, rate: cfg.mode === 'open' ? cfg.rate ?? null : null, connections: cfg.connections, seconds, sent, ok, errors, errorCount,
    perSecond: Math.round(timeline.reduce((a, b) => a + b, 0) / seconds), latencyMs: percentiles(latency.values()), sendLagMs: cfg.mode === 'open' ? percentiles(lag.values()) : null,
    serviceMs: cfg.mode === 'open' ? percentiles(service.values()) : null,
    timeline, verdicts, answeredAll, clientCpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
  };
}

const raw = process.argv[2] ?? process.env.LOAD_CONFIG;
if (raw === undefined) {
  process.stderr.write('usage: node dist/bench/load.js \'{"url": …, "method": "POST", "targets": […], "mode": "open"|"closed", …}\'\n');
  process.exit(2);
}
runLoad(JSON.parse(raw) as LoadConfig).then(
  (r) => process.stdout.write(JSON.stringify(r) + '\n', () => process.exit(0)),
  (err) => {
    process.stderr.write(`load: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
