import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Action } from '../actions/action.js';
import { analyzeAction, loadParsers } from '../actions/classify.js';
import { readAction } from '../actions/input.js';
import { parseBash } from '../actions/shell/parser.js';

import { parseSync } from 'libpg-query';
import { decide } from '../engine/decide.js';
import { defaultPolicy } from '../policy/load.js';
import { corpusCases } from '../testing/corpus.js';

/**
 * `npm run bench`: decisions per second and per-decision latency on the corpus mix with the
 * default policy, in one process on one core, side by side with two baselines measured in the
 * same run and interleaved with it: the raw parsers alone (tree-sitter-bash, libpg-query) and the
 * whole analysis (parse + walk into parts). The policy's own cost is decide − analysis.
 * Writes bench-results/decide.json. Options: ROUNDS (default 60), the rounds over the mix.
 */

const ctx = { cwd: '/home/dev/app', home: '/home/dev' };
const root = fileURLToPath(new URL('../../', import.meta.url));

function loadMix(): { id: string; action: Action }[] {
  let lines: Record<string, unknown>[];
  try {
    lines = corpusCases().map((x) => x.c);
  } catch {
    lines = readFileSync(join(root, 'examples', 'actions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    process.stderr.write('bench: no shared corpus beside the checkout; using examples/actions.jsonl\n');
  }
  return lines.flatMap((c) => {
    const r = readAction(c);
    return r.ok ? [{ id: String(c.id), action: r.action }] : [];
  });
}

/** The raw parse of an action's text, nothing of ours: the floor under any analysis. */
function rawParse(action: Action): void {
  if (action.kind === 'shell') parseBash(action.command).delete();
  else if (action.kind === 'sql') parseSync(action.sql);
  else if (action.kind === 'mcp_tool') {
    for (const v of Object.values(action.arguments)) if (typeof v === 'string' && v.length > 0) parseBash(v).delete();
  }
}

interface Stats { n: number; p50: number; p90: number; p99: number; max: number; mean: number; perSecond: number }

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  const total = s.reduce((a, b) => a + b, 0);
  const round = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), max: round(s[s.length - 1] as number), mean: round(total / s.length), perSecond: Math.round((s.length / total) * 1e6) };
}

function timed(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1000; // µs
}

async function main(): Promise<void> {
  await loadParsers();
  const policy = defaultPolicy();
  const mix = loadMix();
  const rounds = Number(process.env.ROUNDS ?? 60);
  const samples = { parse: [] as number[], analyze: [] as number[], decide: [] as number[] };
  const byKind = new Map<string, number[]>();
  // warm up: JIT, WASM tiers, glob caches
  for (let i = 0; i < 20; i++) for (const { action } of mix) decide(policy, action, ctx);
  const progressEvery = Math.max(1, Math.floor(rounds / 10));
  const started = Date.now();
  for (let r = 0; r < rounds; r++) {
    for (const { action } of mix) {
      samples.parse.push(timed(() => rawParse(action)));
      samples.analyze.push(timed(() => void analyzeAction(action, ctx)));
      const t = timed(() => void decide(policy, action, ctx));
      samples.decide.push(t);
      (byKind.get(action.kind) ?? byKind.set(action.kind, []).get(action.kind) as number[]).push(t);
    }
    if ((r + 1) % progressEvery === 0) process.stderr.write(`bench: round ${r + 1}/${rounds} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  }
  // throughput without per-call timers: back-to-back decisions over the mix
  const loops = Math.max(1, Math.floor(rounds / 3));
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < loops; r++) for (const { action } of mix) decide(policy, action, ctx);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const result = {
    when: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
    mix: { actions: mix.length, rounds, policyRules: policy.rules.length },
    unit: 'µs per action',
    decide: stats(samples.decide),
    analyzeOnly: stats(samples.analyze),
    rawParseOnly: stats(samples.parse),
    decideByKind: Object.fromEntries([...byKind].map(([k, v]) => [k, stats(v)])),
    throughput: { decisionsPerSecond: Math.round((loops * mix.length) / wall) },
    aim: { p50: 50, p99: 250, decisionsPerSecond: 20000 },
  };
  mkdirSync(join(root, 'bench-results'), { recursive: true });
  writeFileSync(join(root, 'bench-results', 'decide.json'), JSON.stringify(result, null, 2) + '\n');
  const row = (name: string, s: Stats) => `${name.padEnd(22)} ${String(s.p50).padStart(8)} ${String(s.p90).padStart(8)} ${String(s.p99).padStart(8)} ${String(s.max).padStart(9)} ${String(s.mean).padStart(8)}`;
  const lines = [
    `decision benchmark: ${mix.length} corpus actions × ${rounds} rounds, default policy (${policy.rules.length} rules), ${result.machine.cpu}, node ${process.version}`,
    `${'µs per action'.padEnd(22)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(9)} ${'mean'.padStart(8)}`,
    row('raw parse only', result.rawParseOnly),
    row('analysis (parse+walk)', result.analyzeOnly),
    row('decide (all of it)', result.decide),
    ...[...byKind.keys()].sort().map((k) => row(`  decide: ${k}`, result.decideByKind[k] as Stats)),
    `throughput: ${result.throughput.decisionsPerSecond} decisions/s on one core (aim: p50 ≤ 50 µs, p99 ≤ 250 µs, ≥ 20000/s)`,
    `written to bench-results/decide.json`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});


