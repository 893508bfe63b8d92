import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatehouse } from '../../testing/process.js';
import { KEY_FILE, SqliteAuditLog } from './audit.js';
import { DB_FILE } from './db.js';

function trail(n: number, checkpointAt: number[] = []): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'gatehouse-audit-')), 'data');
  const log = SqliteAuditLog.open(dir);
  for (let i = 1; i <= n; i++) {
    log.append({ time: new Date(Date.UTC(2026, 10, 21, 0, 0, i)).toISOString(), type: 'decision', session: 's1', verdict: i % 3 ? 'allow' : 'ask', rule: `r${i}` });
    if (checkpointAt.includes(i)) log.checkpoint();
  }
  log.close();
  return dir;
}

function sql(dir: string, statement: string): void {
  const db = new Database(join(dir, DB_FILE));
  db.exec(statement);
  db.close();
}

describe('the SQLite audit log and gatehouse audit', () => {
  it('appends durably, survives a reopen and keeps the chain going', () => {
    const dir = trail(3);
    const log = SqliteAuditLog.open(dir);
    const [r] = log.append({ time: '2026-11-21T00:01:00Z', type: 'session.closed' });
    assert.equal(r?.seq, 4);
    assert.equal(r?.prev, [...log.records()][2]?.hash);
    log.close();
  });

  it('keeps the signing key private (0600)', () => {
    const dir = trail(2, [2]);
    assert.equal(statSync(join(dir, KEY_FILE)).mode & 0o777, 0o600);
  });

  it('verifies an intact trail', () => {
    const r = gatehouse(['audit', 'verify', '--data', trail(5, [3, 5])]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /intact: 5 records, last signed checkpoint at 5/);
  });

  it('names a modified, a deleted, an inserted and a truncated record', () => {
    const modified = trail(5, [5]);
    sql(modified, `UPDATE audit SET record = replace(record, '"verdict":"ask"', '"verdict":"allow"') WHERE id = 3`);
    let r = gatehouse(['audit', 'verify', '--data', modified]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /modified at 3/);

    const deleted = trail(5, [5]);
    sql(deleted, 'DELETE FROM audit WHERE id = 2');
    assert.match(gatehouse(['audit', 'verify', '--data', deleted]).stdout, /deleted at 2: record 2 is missing/);

    const inserted = trail(5, [5]);
    sql(inserted, `INSERT INTO audit (record) SELECT record FROM audit WHERE id = 4`);
    assert.match(gatehouse(['audit', 'verify', '--data', inserted]).stdout, /inserted at 4/);

    const truncated = trail(6, [3, 6]);
    sql(truncated, 'DELETE FROM audit WHERE id > 4');
    r = gatehouse(['audit', 'verify', '--data', truncated, '--json']);
    assert.equal(r.status, 1);
    const v = JSON.parse(r.stdout);
    assert.deepEqual(v.problems.map((p: { kind: string; seq: number }) => `${p.kind}@${p.seq}`), ['truncated@6']);
    assert.equal(v.lastGoodCheckpoint, 3);
  });

  it('exports every record as a JSON line, and fails plainly without a trail', () => {
    const r = gatehouse(['audit', 'export', '--jsonl', '--data', trail(4)]);
    assert.equal(r.status, 0);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l).seq), [1, 2, 3, 4]);
    const none = gatehouse(['audit', 'verify', '--data', join(tmpdir(), 'no-such-gatehouse-dir')]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no audit trail/);
  });
});
