import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../../gatehouse-error.js';

/**
 * The embedded store's database: one SQLite file (`gatehouse.db`, WAL, `synchronous = FULL`) in
 * the data directory, shared by the gateway and the CLI commands run beside it. Every write is a
 * transaction; another process's commits are seen through `PRAGMA data_version`.
 */

export const DB_FILE = 'gatehouse.db';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS audit_session ON audit (json_extract(record, '$.session')) WHERE json_extract(record, '$.session') IS NOT NULL;
  CREATE INDEX IF NOT EXISTS audit_decision ON audit (json_extract(record, '$.decision')) WHERE json_extract(record, '$.type') = 'decision';
  CREATE TABLE IF NOT EXISTS audit_checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, checkpoint TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS agents (
    name TEXT PRIMARY KEY, environment TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS reviewers (
    name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, agent TEXT NOT NULL, environment TEXT NOT NULL, task TEXT NOT NULL,
    token_hash TEXT NOT NULL, workspace TEXT NOT NULL, home TEXT NOT NULL,
    created TEXT NOT NULL, expires TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'halted', 'closed', 'expired')),
    state_reason TEXT, state_by TEXT, state_time TEXT);
  CREATE INDEX IF NOT EXISTS sessions_state ON sessions (state, expires);
  CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, session TEXT NOT NULL, action_hash TEXT NOT NULL, decision_id TEXT NOT NULL,
    action TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT, required INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'used')),
    created TEXT NOT NULL, expires TEXT NOT NULL, resolved TEXT, resolution TEXT);
  CREATE INDEX IF NOT EXISTS approvals_binding ON approvals (session, action_hash, status);
  CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, expires);
  CREATE TABLE IF NOT EXISTS approval_votes (
    approval TEXT NOT NULL, reviewer TEXT NOT NULL, vote TEXT NOT NULL CHECK (vote IN ('approve', 'reject')),
    reason TEXT NOT NULL, time TEXT NOT NULL, PRIMARY KEY (approval, reviewer));
  CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash TEXT PRIMARY KEY, reviewer TEXT NOT NULL, csrf TEXT NOT NULL, expires TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY, sealed TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS phantom_tokens (
    id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, session TEXT NOT NULL, credential TEXT NOT NULL,
    expires TEXT NOT NULL, revoked TEXT);
  CREATE INDEX IF NOT EXISTS phantom_tokens_session ON phantom_tokens (session);
  CREATE TABLE IF NOT EXISTS spend (
    credential TEXT NOT NULL, session TEXT NOT NULL, time TEXT NOT NULL, cents INTEGER NOT NULL, decision TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS spend_session ON spend (credential, session);
  CREATE INDEX IF NOT EXISTS spend_time ON spend (credential, time);
  CREATE TABLE IF NOT EXISTS action_rate (
    scope TEXT NOT NULL CHECK (scope IN ('session', 'agent')), key TEXT NOT NULL, second INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (scope, key, second)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS outcome_log (
    session TEXT NOT NULL, action_hash TEXT NOT NULL, time TEXT NOT NULL, failed INTEGER NOT NULL,
    class TEXT, stop INTEGER NOT NULL, backoff_seconds REAL NOT NULL, approval INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS outcome_log_session ON outcome_log (session, time);
  CREATE INDEX IF NOT EXISTS outcome_log_failures ON outcome_log (session, action_hash, time) WHERE failed = 1;
  CREATE TABLE IF NOT EXISTS scale_log (session TEXT NOT NULL, target TEXT NOT NULL, value REAL NOT NULL, time TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS scale_log_target ON scale_log (session, target, time);
  CREATE TABLE IF NOT EXISTS hook_sessions (key TEXT PRIMARY KEY, session TEXT NOT NULL, token TEXT, gateway TEXT);
  CREATE TABLE IF NOT EXISTS hook_calls (tool_use_id TEXT PRIMARY KEY, session TEXT NOT NULL, decision TEXT NOT NULL, time TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, approval TEXT NOT NULL, target TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL, last_error TEXT, updated TEXT NOT NULL);
`;

// Pins are per agent: one agent's listing never marks the tools another agent relies on.
const TOOL_PINS = `
  CREATE TABLE IF NOT EXISTS tool_pins (
    agent TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, hash TEXT NOT NULL, definition TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pinned', 'changed')), changed_hash TEXT, changed_definition TEXT,
    pinned TEXT NOT NULL, pinned_by TEXT NOT NULL, PRIMARY KEY (agent, server, tool));
`;

/** Columns added after a table was first created. */
function migrate(db: Database.Database): void {
  // pins of the first, unscoped form (never released) are learned again on the next listing
  const pinColumns = (db.prepare('PRAGMA table_info(tool_pins)').all() as { name: string }[]).map((c) => c.name);
  if (pinColumns.length > 0 && !pinColumns.includes('agent')) db.exec('DROP TABLE tool_pins');
  db.exec(TOOL_PINS);
  const sessionColumns = (db.prepare('PRAGMA table_info(sessions)').all() as { name: string }[]).map((c) => c.name);
  if (!sessionColumns.includes('rows_touched')) db.exec('ALTER TABLE sessions ADD COLUMN rows_touched INTEGER NOT NULL DEFAULT 0');
  if (!sessionColumns.includes('resumed')) db.exec('ALTER TABLE sessions ADD COLUMN resumed TEXT');
  if (!sessionColumns.includes('resources_created')) db.exec('ALTER TABLE sessions ADD COLUMN resources_created INTEGER NOT NULL DEFAULT 0');
}

/**
 * Opens (creating when absent) the database of a data directory.
 * @param dir the data directory; created with mode 0700 when missing.
 * @param options.create false to refuse a directory without a database (CLI commands that only read).
 * @throws GatehouseError `store_unavailable` when the directory or database cannot be opened;
 *         `store_missing` when `create` is false and there is no database.
 */
export function openDatabase(dir: string, options: { create?: boolean } = {}): Database.Database {
  const file = join(dir, DB_FILE);
  if (options.create === false && !existsSync(file)) {
    throw new GatehouseError('store_missing', `no Gatehouse data in ${dir} (start the gateway there, or choose the data directory with --data DIR)`, { dir });
  }
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = new Database(file);
    // the store holds token hashes and the trail: readable by the gateway's user only
    try {
      chmodSync(file, 0o600);
    } catch {
      // another user's store, opened to read (audit verify): leave its mode alone
    }
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    db.exec(SCHEMA);
    migrate(db);
    return db;
  } catch (err) {
    throw new GatehouseError('store_unavailable', `cannot open the store in ${dir}: ${(err as Error).message}`, { dir });
  }
}
