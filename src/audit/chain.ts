import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

/**
 * The audit chain: append-only records, each holding the SHA-256 of the previous record's
 * canonical form, and checkpoints (sequence number + head hash) signed with Ed25519.
 *
 * Canonical form: JSON with object keys sorted by UTF-16 code unit, no insignificant whitespace,
 * `undefined` members dropped (RFC 8785's ordering; numbers as JavaScript prints them).
 */

/** SHA-256 of nothing, the `prev` of the first record. */
export const GENESIS = createHash('sha256').update('').digest('hex');

/** What a record says; the chain adds `seq`, `prev` and `hash`. */
export interface AuditBody {
  /** ISO 8601 time, UTC. */
  time: string;
  /** Event type: `session.opened`, `decision`, `approval.created`, `approval.approved`, … */
  type: string;
  [field: string]: unknown;
}

export interface AuditRecord extends AuditBody {
  /** 1, 2, 3 … without gaps. */
  seq: number;
  /** Hex SHA-256 of the previous record's canonical form (GENESIS for the first). */
  prev: string;
  /** Hex SHA-256 of this record's canonical form without `hash`. */
  hash: string;
}

export interface Checkpoint {
  seq: number;
  /** The hash of record `seq`. */
  head: string;
  time: string;
  /** Base64 Ed25519 signature of {@link checkpointMessage}. */
  signature: string;
}

/** Canonical JSON (sorted keys, no whitespace). @throws TypeError on cycles, bigints and non-finite numbers. */
export function canonical(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no form for ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonical(v))).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON has no form for a ${typeof value}`);
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The hash a record must carry: SHA-256 of its canonical form without `hash`. */
export function recordHash(record: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = record;
  return sha256(canonical(rest));
}

/**
 * Chains a body after `previous` (null for the first record).
 * @example appendTo(null, {time: '2026-01-01T00:00:00Z', type: 'session.opened'}).seq // 1
 */
export function appendTo(previous: Pick<AuditRecord, 'seq' | 'hash'> | null, body: AuditBody): AuditRecord {
  const unsigned = { ...body, seq: previous === null ? 1 : previous.seq + 1, prev: previous === null ? GENESIS : previous.hash };
  return { ...unsigned, hash: recordHash(unsigned) };
}

/** The exact bytes a checkpoint signature covers. */
export function checkpointMessage(seq: number, head: string, time: string): string {
  return `gatehouse-checkpoint:v1:${seq}:${head}:${time}`;
}

/** A new Ed25519 key pair as PEM (PKCS#8 private, SPKI public). */
export function newSigningKey(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Signs a checkpoint for `head` (the last record). @param privateKeyPem PKCS#8 PEM from {@link newSigningKey}. */
export function signCheckpoint(head: AuditRecord, privateKeyPem: string, time = new Date().toISOString()): Checkpoint {
  const key: KeyObject = createPrivateKey(privateKeyPem);
  const signature = sign(null, Buffer.from(checkpointMessage(head.seq, head.hash, time)), key).toString('base64');
  return { seq: head.seq, head: head.hash, time, signature };
}

export type ProblemKind = 'modified' | 'deleted' | 'inserted' | 'reordered' | 'truncated' | 'bad-signature' | 'bad-checkpoint';

export interface ChainProblem {
  kind: ProblemKind;
  /** The record (or checkpoint) sequence number the problem is found at. */
  seq: number;
  message: string;
}

export interface Verification {
  ok: boolean;
  records: number;
  /** The last checkpoint whose signature and head both hold and before which the chain is unbroken, or null. */
  lastGoodCheckpoint: number | null;
  problems: ChainProblem[];
}

/**
 * Verifies records (in stored order) and checkpoints: every hash recomputes, sequence numbers run
 * 1, 2, 3 … and each `prev` is the hash before it, every checkpoint is signed by `publicKeyPem` and
 * names the hash its record has. It says which record was modified, deleted, inserted or reordered,
 * and when records a checkpoint covered are gone (truncated).
 */
export function verifyChain(records: AuditRecord[], checkpoints: Checkpoint[], publicKeyPem: string): Verification {
  const problems: ChainProblem[] = [];
  const key = createPublicKey(publicKeyPem);
  const bySeq = new Map<number, AuditRecord>();
  let expectSeq = 1;
  let prevHash = GENESIS;
  for (const r of records) {
    const fresh = recordHash(r);
    if (fresh !== r.hash) problems.push({ kind: 'modified', seq: r.seq, message: `record ${r.seq} does not match its hash: its content was changed` });
    if (r.seq < expectSeq) {
      problems.push({ kind: bySeq.has(r.seq) ? 'inserted' : 'reordered', seq: r.seq, message: bySeq.has(r.seq) ? `record ${r.seq} appears twice` : `record ${r.seq} comes after record ${expectSeq - 1}` });
    } else if (r.seq > expectSeq) {
      problems.push({ kind: 'deleted', seq: expectSeq, message: r.seq - 1 === expectSeq ? `record ${expectSeq} is missing` : `records ${expectSeq}–${r.seq - 1} are missing` });
    } else if (r.prev !== prevHash) {
      problems.push({ kind: 'inserted', seq: r.seq, message: `record ${r.seq} does not follow the record before it (an insertion or a replaced predecessor)` });
    }
    if (!bySeq.has(r.seq)) bySeq.set(r.seq, r);
    expectSeq = Math.max(expectSeq, r.seq + 1);
    prevHash = r.hash;
  }
  // a gap that fills in later was a reordering, not a deletion
  for (let i = problems.length - 1; i >= 0; i--) {
    const p = problems[i] as ChainProblem;
    const end = p.kind === 'deleted' ? Number(/–(\d+)/.exec(p.message)?.[1] ?? p.seq) : 0;
    if (p.kind === 'deleted' && Array.from({ length: end - p.seq + 1 }, (_, k) => p.seq + k).every((s) => bySeq.has(s))) problems.splice(i, 1);
  }
  let lastGood: number | null = null;
  // a checkpoint vouches for the records before it only through an unbroken chain up to it
  const firstBroken = problems.reduce((m, p) => Math.min(m, p.seq), Infinity);
  for (const c of checkpoints) {
    const signed = verify(null, Buffer.from(checkpointMessage(c.seq, c.head, c.time)), key, Buffer.from(c.signature, 'base64'));
    if (!signed) {
      problems.push({ kind: 'bad-signature', seq: c.seq, message: `the checkpoint at ${c.seq} (${c.time}) is not signed by this gateway's key` });
      continue;
    }
    const r = bySeq.get(c.seq);
    if (r === undefined) {
      problems.push({ kind: 'truncated', seq: c.seq, message: `the checkpoint at ${c.seq} (${c.time}) covers records that are gone: the trail was truncated` });
      continue;
    }
    if (r.hash !== c.head) {
      problems.push({ kind: 'bad-checkpoint', seq: c.seq, message: `record ${c.seq} is not the record the checkpoint of ${c.time} signed` });
      continue;
    }
    if (c.seq < firstBroken) lastGood = Math.max(lastGood ?? 0, c.seq);
  }
  return { ok: problems.length === 0, records: records.length, lastGoodCheckpoint: lastGood, problems };
}
