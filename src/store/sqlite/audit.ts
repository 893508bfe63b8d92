import type Database from 'better-sqlite3';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendTo, newSigningKey, signCheckpoint, verifyChain, type AuditBody, type AuditRecord, type Checkpoint, type Verification } from '../../audit/chain.js';
import { GatehouseError } from '../../gatehouse-error.js';
import { openDatabase } from './db.js';

/**
 * The audit trail in the embedded store (see `db.ts`).
 *
 * Records are stored as their exact JSON in insertion order (`id`), separate from their chain
 * `seq`, so that a row edited, deleted, inserted or moved by hand shows in `verifyChain`. Each
 * append reads the head inside its transaction, so the gateway and CLI commands run beside it
 * (another process, the same file) extend one chain.
 */

export const KEY_FILE = 'audit-signing-key.pem';
export const PUBLIC_KEY_FILE = 'audit-signing-key.pub.pem';

export class SqliteAuditLog {
  private readonly insert: Database.Statement;
  private readonly last: Database.Statement;
  private readonly lastLink: Database.Statement;
  private readonly appendAll: Database.Transaction<(bodies: AuditBody[]) => AuditRecord[]>;

  /** @param db an open store database (`openDatabase`). @param dir its data directory (for the signing key). */
  constructor(readonly db: Database.Database, readonly dir: string) {
    this.insert = db.prepare('INSERT INTO audit (record) VALUES (?)');
    this.last = db.prepare('SELECT record FROM audit ORDER BY id DESC LIMIT 1');
    this.lastLink = db.prepare(`SELECT json_extract(record, '$.seq') AS seq, json_extract(record, '$.hash') AS hash FROM audit ORDER BY id DESC LIMIT 1`);
    this.appendAll = db.transaction((bodies: AuditBody[]) => {
      let last = this.lastLink.get() as { seq: number; hash: string } | undefined ?? null;
      return bodies.map((body) => {
        const record = appendTo(last, body);
        this.insert.run(JSON.stringify(record));
        last = record;
        return record;
      });
    });
  }

  /** Opens the audit log of a data directory on its own connection. @throws GatehouseError `store_unavailable`, `store_missing`. */
  static open(dir: string, options: { create?: boolean } = {}): SqliteAuditLog {
    return new SqliteAuditLog(openDatabase(dir, options), dir);
  }

  /**
   * Appends records in one transaction (group commit) and returns them chained. Inside a caller's
   * transaction, the records commit (or roll back) with it.
   * @throws GatehouseError `store_unavailable` when the write fails (full disk, read-only directory):
   *         nothing was appended and the caller must deny.
   */
  append(...bodies: AuditBody[]): AuditRecord[] {
    try {
      // BEGIN IMMEDIATE: read the head and write after it under one lock (a deferred read-then-write fails with SQLITE_BUSY when another process wrote in between)
      return this.appendAll.immediate(bodies);
    } catch (err) {
      if (err instanceof GatehouseError) throw err;
      throw new GatehouseError('store_unavailable', `the audit record could not be written: ${(err as Error).message}`, { dir: this.dir });
    }
  }

  /** The last record in stored order, or null. */
  head(): AuditRecord | null {
    const row = this.last.get() as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as AuditRecord) : null;
  }

  /** Records in stored order. */
  *records(): Generator<AuditRecord> {
    for (const row of this.db.prepare('SELECT record FROM audit ORDER BY id').iterate() as Iterable<{ record: string }>) yield JSON.parse(row.record) as AuditRecord;
  }

  /** The last `limit` records, newest first; `session` keeps one session's. */
  tail(limit: number, session?: string): AuditRecord[] {
    const rows = session === undefined
      ? this.db.prepare('SELECT record FROM audit ORDER BY id DESC LIMIT ?').all(limit)
      : this.db.prepare(`SELECT record FROM audit WHERE json_extract(record, '$.session') = ? ORDER BY id DESC LIMIT ?`).all(session, limit);
    return (rows as { record: string }[]).map((r) => JSON.parse(r.record) as AuditRecord);
  }

  /** Verifies the records and checkpoints of one snapshot (one read transaction) against `publicKeyPem`. */
  verify(publicKeyPem: string): Verification {
    return this.db.transaction(() => verifyChain([...this.records()], this.checkpoints(), publicKeyPem))();
  }

  /** Signs and stores a checkpoint for the current head; null when the log is empty. */
  checkpoint(time = new Date().toISOString()): Checkpoint | null {
    const head = this.head();
    if (head === null) return null;
    const cp = signCheckpoint(head, signingKey(this.dir).privateKey, time);
    this.db.prepare('INSERT INTO audit_checkpoints (checkpoint) VALUES (?)').run(JSON.stringify(cp));
    return cp;
  }

  checkpoints(): Checkpoint[] {
    return (this.db.prepare('SELECT checkpoint FROM audit_checkpoints ORDER BY id').all() as { checkpoint: string }[]).map((r) => JSON.parse(r.checkpoint) as Checkpoint);
  }

  close(): void {
    this.db.close();
  }
}

/**
 * The data directory's Ed25519 signing key, created on first use: the private key with mode 0600,
 * the public key beside it for anyone who verifies.
 */
export function signingKey(dir: string): { privateKey: string; publicKey: string } {
  const priv = join(dir, KEY_FILE);
  const pub = join(dir, PUBLIC_KEY_FILE);
  if (!existsSync(priv)) {
    const key = newSigningKey();
    writeFileSync(priv, key.privateKey, { mode: 0o600, flag: 'wx' });
    writeFileSync(pub, key.publicKey, { mode: 0o644 });
    chmodSync(priv, 0o600);
  }
  return { privateKey: readFileSync(priv, 'utf8'), publicKey: readFileSync(pub, 'utf8') };
}
