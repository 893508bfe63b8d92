import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendTo, newSigningKey, signCheckpoint, type AuditBody, type AuditRecord, type Checkpoint } from '../../audit/chain.js';
import { GatehouseError } from '../../gatehouse-error.js';

/**
 * The audit trail in the embedded store: SQLite (better-sqlite3, WAL) in the data directory.
 *
 * Records are stored as their exact JSON in insertion order (`id`), separate from their chain
 * `seq`, so that a row edited, deleted, inserted or moved by hand shows in `verifyChain`.
 * Appends are synchronous transactions: a record is durable when `append` returns.
 */

export const DB_FILE = 'gatehouse.db';
export const KEY_FILE = 'audit-signing-key.pem';
export const PUBLIC_KEY_FILE = 'audit-signing-key.pub.pem';

export class SqliteAuditLog {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private last: AuditRecord | null;

  /**
   * Opens (creating when absent) the audit log of a data directory.
   * @param dir the data directory; created with mode 0700 when missing.
   * @throws GatehouseError `store_unavailable` when the directory or database cannot be opened.
   */
  constructor(readonly dir: string) {
    try {
      if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.db = new Database(join(dir, DB_FILE));
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS audit_checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, checkpoint TEXT NOT NULL);
      `);
    } catch (err) {
      throw new GatehouseError('store_unavailable', `cannot open the audit store in ${dir}: ${(err as Error).message}`, { dir });
    }
    this.insert = this.db.prepare('INSERT INTO audit (record) VALUES (?)');
    const row = this.db.prepare('SELECT record FROM audit ORDER BY id DESC LIMIT 1').get() as { record: string } | undefined;
    this.last = row ? (JSON.parse(row.record) as AuditRecord) : null;
  }

  /**
   * Appends records in one transaction (group commit) and returns them chained.
   * @throws GatehouseError `store_unavailable` when the write fails (full disk, read-only directory):
   *         nothing was appended and the caller must deny.
   */
  append(...bodies: AuditBody[]): AuditRecord[] {
    const out: AuditRecord[] = [];
    let last = this.last;
    try {
      this.db.transaction(() => {
        for (const body of bodies) {
          const record = appendTo(last, body);
          this.insert.run(JSON.stringify(record));
          out.push(record);
          last = record;
        }
      })();
    } catch (err) {
      throw new GatehouseError('store_unavailable', `the audit record could not be written: ${(err as Error).message}`, { dir: this.dir });
    }
    this.last = last;
    return out;
  }

  head(): AuditRecord | null {
    return this.last;
  }

  /** Records in stored order. */
  *records(): Generator<AuditRecord> {
    for (const row of this.db.prepare('SELECT record FROM audit ORDER BY id').iterate() as Iterable<{ record: string }>) yield JSON.parse(row.record) as AuditRecord;
  }

  /** Signs and stores a checkpoint for the current head; null when the log is empty. */
  checkpoint(time = new Date().toISOString()): Checkpoint | null {
    if (this.last === null) return null;
    const cp = signCheckpoint(this.last, signingKey(this.dir).privateKey, time);
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
