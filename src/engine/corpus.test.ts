import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadParsers } from '../actions/classify.js';
import { readAction } from '../actions/input.js';
import { defaultPolicy } from '../policy/load.js';
import { corpusCases, meetsExpectation } from '../testing/corpus.js';
import { decide } from './decide.js';

/** The shared corpus against the built-in default policy; every line must reach its verdict. */
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
      assert.ok(meetsExpectation(c.expect, d.verdict), `expected ${c.expect}, got ${d.verdict} by ${d.rule.id}: ${d.reasons.join(' | ')}`);
    });
  }
});
