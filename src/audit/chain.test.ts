import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendTo, canonical, GENESIS, newSigningKey, signCheckpoint, verifyChain, type AuditRecord, type Checkpoint } from './chain.js';

const key = newSigningKey();

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let i = 0; i < n; i++) out.push(appendTo(out[i - 1] ?? null, { time: `2026-11-21T00:00:0${i % 10}Z`, type: 'decision', session: 's1', verdict: i % 2 ? 'allow' : 'ask', seqHint: i }));
  return out;
}
function checkpoints(records: AuditRecord[], at: number[]): Checkpoint[] {
  return at.map((s) => signCheckpoint(records[s - 1] as AuditRecord, key.privateKey, `2026-11-21T01:00:0${s % 10}Z`));
}
function kinds(records: AuditRecord[], cps: Checkpoint[]) {
  const v = verifyChain(records, cps, key.publicKey);
  return v.problems.map((p) => `${p.kind}@${p.seq}`);
}

describe('audit chain', () => {
  it('writes canonical JSON with sorted keys and no undefined members', () => {
    assert.equal(canonical({ b: 1, a: [true, null, 'x'], c: undefined, d: { z: 1, y: 2 } }), '{"a":[true,null,"x"],"b":1,"d":{"y":2,"z":1}}');
    assert.throws(() => canonical({ n: Infinity }), TypeError);
  });

  it('links each record to the one before, from genesis', () => {
    const r = chain(3);
    assert.equal(r[0]?.prev, GENESIS);
    assert.equal(r[1]?.prev, r[0]?.hash);
    assert.deepEqual(r.map((x) => x.seq), [1, 2, 3]);
    const v = verifyChain(r, checkpoints(r, [3]), key.publicKey);
    assert.deepEqual(v, { ok: true, records: 3, lastGoodCheckpoint: 3, problems: [] });
  });

  it('says which record was modified', () => {
    const r = chain(6);
    (r[3] as AuditRecord).verdict = 'allow-tampered';
    assert.deepEqual(kinds(r, checkpoints(r, [6])), ['modified@4']);
  });

  it('says which records were deleted', () => {
    const r = chain(6);
    assert.deepEqual(kinds([...r.slice(0, 2), ...r.slice(4)], checkpoints(r, [6])), ['deleted@3']);
  });

  it('finds an inserted or duplicated record', () => {
    const r = chain(5);
    const forged = appendTo(r[1] as AuditRecord, { time: 'x', type: 'decision', verdict: 'allow' }); // seq 3, forged after record 2
    assert.deepEqual(kinds([...r.slice(0, 3), { ...forged, seq: 4 }, ...r.slice(3)], []), ['modified@4', 'inserted@4', 'inserted@4']);
    assert.deepEqual(kinds([...r, r[4] as AuditRecord], []), ['inserted@5']);
  });

  it('finds reordered records', () => {
    const r = chain(5);
    assert.deepEqual(kinds([r[0], r[2], r[1], r[3], r[4]] as AuditRecord[], []), ['reordered@2', 'inserted@4']);
  });

  it('finds truncation and a rewritten tail through signed checkpoints', () => {
    const r = chain(8);
    const cps = checkpoints(r, [4, 8]);
    assert.deepEqual(kinds(r.slice(0, 6), cps), ['truncated@8']);
    // rewrite records 5–8 consistently: every hash recomputes, only the checkpoint can tell
    const rewritten = r.slice(0, 4);
    for (let i = 4; i < 8; i++) rewritten.push(appendTo(rewritten[i - 1] as AuditRecord, { time: 'y', type: 'decision', verdict: 'allow' }));
    assert.deepEqual(kinds(rewritten, cps), ['bad-checkpoint@8']);
    assert.equal(verifyChain(rewritten, cps, key.publicKey).lastGoodCheckpoint, 4);
  });

  it('rejects a checkpoint signed by another key or altered', () => {
    const r = chain(3);
    const other = newSigningKey();
    const cp = signCheckpoint(r[2] as AuditRecord, other.privateKey);
    assert.deepEqual(kinds(r, [cp]), ['bad-signature@3']);
    const mine = checkpoints(r, [3])[0] as Checkpoint;
    assert.deepEqual(kinds(r, [{ ...mine, seq: 2 }]), ['bad-signature@2']);
  });
});
