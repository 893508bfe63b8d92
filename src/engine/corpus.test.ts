import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadParsers } from '../actions/classify.js';
import { readAction } from '../actions/input.js';
import { defaultPolicy } from '../policy/load.js';
import { decide } from './decide.js';

/**
 * The shared corpus (`../shared/corpus/*.jsonl`, beside the checkout; `GATEHOUSE_CORPUS` names
 * another directory) against the built-in default policy. Every line must reach its verdict:
 * allow → allow; gate → ask or deny; deny → deny. A missing corpus fails, never skips.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
export const CORPUS_DIR = process.env.GATEHOUSE_CORPUS ?? join(root, '..', 'shared', 'corpus');

interface Case {
  id: string;
  expect: 'allow' | 'gate' | 'deny';
  cwd?: string;
  [key: string]: unknown;
}

/** Every case of every corpus file, with the file it came from. */
export function corpusCases(): { file: string; line: number; c: Case }[] {
  if (!existsSync(CORPUS_DIR)) throw new Error(`the corpus directory ${CORPUS_DIR} is missing: check the repository out beside shared/, or set GATEHOUSE_CORPUS`);
  const files = readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.jsonl')).sort();
  if (files.length === 0) throw new Error(`no *.jsonl in ${CORPUS_DIR}`);
  return files.flatMap((file) =>
    readFileSync(join(CORPUS_DIR, file), 'utf8').split('\n').flatMap((text, i) => (text.trim() === '' ? [] : [{ file, line: i + 1, c: JSON.parse(text) as Case }])),
  );
}

before(() => loadParsers());

describe('the corpus against the default policy', () => {
  const cases = corpusCases();
  it('has cases of every expectation', () => {
    for (const e of ['allow', 'gate', 'deny']) assert.ok(cases.some((x) => x.c.expect === e), `no ${e} case`);
  });
  for (const { file, line, c } of cases) {
    it(`${c.id}: ${c.expect} (${file}:${line})`, () => {
      const read = readAction(c);
      assert.ok(read.ok, read.ok ? '' : read.reason);
      const d = decide(defaultPolicy(), read.action, { cwd: c.cwd ?? '/home/dev/app', home: '/home/dev' });
      const ok = c.expect === 'allow' ? d.verdict === 'allow' : c.expect === 'gate' ? d.verdict !== 'allow' : d.verdict === 'deny';
      assert.ok(ok, `expected ${c.expect}, got ${d.verdict} by ${d.rule.id}: ${d.reasons.join(' | ')}`);
    });
  }
});
