import type Database from 'better-sqlite3';
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { GatehouseError } from '../../gatehouse-error.js';
import { SqliteAuditLog } from './audit.js';
import { openDatabase } from './db.js';

/**
 * The embedded store: identities, sessions, approvals, reviewer sign-ins, notifications and the
 * audit trail in one SQLite database (`db.ts`). Methods are synchronous; a caller that changes
 * state and appends its audit record does both inside {@link SqliteStore.transaction} or
 * {@link SqliteStore.batched}, so neither lands without the other.
 *
 * Times are ISO 8601 UTC strings (`Date#toISOString`), which compare correctly as text.
 */

export type SessionState = 'active' | 'halted' | 'closed' | 'expired';
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'used';

export interface Identity {
  name: string;
  environment: string;
  created: string;
}

export interface SessionRecord {
  id: string;
  agent: string;
  environment: string;
  task: string;
  workspace: string;
  home: string;
  created: string;
  expires: string;
  state: SessionState;
  stateReason: string | null;
  stateBy: string | null;
  stateTime: string | null;
  /** When a reviewer last resumed it after a halt (retry budgets count from there); null if never. */
  resumed: string | null;
}

export interface Vote {
  reviewer: string;
  vote: 'approve' | 'reject';
  reason: string;
  time: string;
}

export interface ApprovalRecord {
  id: string;
  session: string;
  /** Hex SHA-256 of the canonical action: the approval covers exactly this action. */
  actionHash: string;
  /** The decision that asked. */
  decisionId: string;
  /** The action, redacted. */
  action: unknown;
  /** The decision that asked (verdict, rule, reasons, parts), redacted. */
  decision: unknown;
  /** The agent's stated reason. */
  reason: string | null;
  /** Distinct reviewers who must approve. */
  required: number;
  status: ApprovalStatus;
  created: string;
  expires: string;
  resolved: string | null;
  resolution: string | null;
  votes: Vote[];
}

/** An MCP tool's pinned definition (its name, description and input schema) and any change seen since. */
export interface ToolPin {
  /** The agent whose sessions listed the tool: pins are per agent. */
  agent: string;
  server: string;
  tool: string;
  /** Hex SHA-256 of the canonical pinned definition. */
  hash: string;
  definition: unknown;
  /** `changed`: the server now describes the tool differently; calls are denied until a reviewer accepts it. */
  status: 'pinned' | 'changed';
  changedHash: string | null;
  changedDefinition: unknown;
  pinned: string;
  pinnedBy: string;
}

/** A phantom token lent to a session (its hash is kept, never the token). */
export interface PhantomToken {
  id: string;
  session: string;
  /** The policy's credential name. */
  credential: string;
  /** ISO time; the session's expiry. */
  expires: string;
  /** ISO time the session ended and took the token with it; null while lent. */
  revoked: string | null;
}

export interface NotificationRecord {
  id: number;
  approval: string;
  target: string;
  status: 'sending' | 'delivered' | 'failed';
  attempts: number;
  lastError: string | null;
  updated: string;
}

interface Queued {
  work: () => unknown;
  /** False: settle at commit, without waiting for the WAL sync (the next sync covers it). */
  sync: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Wraps a driver error as `store_unavailable`; GatehouseErrors pass through. */
function storeError(err: unknown, dir: string): GatehouseError {
  if (err instanceof GatehouseError) return err;
  return new GatehouseError('store_unavailable', `the store could not be written: ${(err as Error).message ?? String(err)}`, { dir });
}

export class SqliteStore {
  readonly audit: SqliteAuditLog;
  private queue: Queued[] = [];
  private readonly stmts: Record<string, Database.Statement>;
  private readonly prepared = new Map<string, Database.Statement>();

  private constructor(readonly db: Database.Database, readonly dir: string) {
    this.audit = new SqliteAuditLog(db, dir);
    const p = (sql: string) => db.prepare(sql);
    this.stmts = {
      agentByHash: p('SELECT name, environment, created FROM agents WHERE token_hash = ?'),
      reviewerByHash: p('SELECT name, created FROM reviewers WHERE token_hash = ?'),
      session: p('SELECT * FROM sessions WHERE id = ?'),
      insertSession: p(`INSERT INTO sessions (id, agent, environment, task, token_hash, workspace, home, created, expires, state)
        VALUES (@id, @agent, @environment, @task, @tokenHash, @workspace, @home, @created, @expires, 'active')`),
      setSessionState: p(`UPDATE sessions SET state = @state, state_reason = @reason, state_by = @by, state_time = @time
        WHERE id = @id AND state = 'active'`),
      approval: p('SELECT * FROM approvals WHERE id = ?'),
      votes: p('SELECT reviewer, vote, reason, time FROM approval_votes WHERE approval = ? ORDER BY time, reviewer'),
      bound: p(`SELECT id, status, expires, required FROM approvals WHERE session = ? AND action_hash = ? AND status IN ('pending', 'approved') AND expires > ? ORDER BY created LIMIT 1`),
      insertApproval: p(`INSERT INTO approvals (id, session, action_hash, decision_id, action, decision, reason, required, status, created, expires)
        VALUES (@id, @session, @actionHash, @decisionId, @action, @decision, @reason, @required, 'pending', @created, @expires)`),
      insertVote: p('INSERT INTO approval_votes (approval, reviewer, vote, reason, time) VALUES (?, ?, ?, ?, ?)'),
      setApproval: p(`UPDATE approvals SET status = @to, resolved = @time, resolution = @resolution WHERE id = @id AND status = @from`),
    };
  }

  /** A statement prepared once per connection. */
  private q(sql: string): Database.Statement {
    let stmt = this.prepared.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.prepared.set(sql, stmt);
    }
    return stmt;
  }

  /**
   * Opens the store of a data directory.
   * @param options.create false to refuse a directory that has no store yet.
   * @throws GatehouseError `store_unavailable`, `store_missing`.
   */
  static open(dir: string, options: { create?: boolean } = {}): SqliteStore {
    return new SqliteStore(openDatabase(dir, options), dir);
  }

  // ── durability ──────────────────────────────────────────────────────────────────────────────
  // A commit is durable once the WAL's frames are on disk. SQLite would fsync the WAL inside every
  // commit (synchronous = FULL), blocking the event loop. Instead the connection runs with
  // synchronous = NORMAL, and the store itself fdatasyncs the WAL after each commit: on the thread
  // pool for group commits (the next requests are decided meanwhile, and commits made while one
  // sync runs share the next), synchronously for `transaction`. Nothing is reported as written
  // before its sync completes. Checkpoints keep SQLite's own syncs.

  private walFd: number | null = null;
  private syncInFlight: Promise<void> | null = null;
  private syncNext: Promise<void> | null = null;

  private wal(): number {
    if (this.walFd === null) {
      this.walFd = openSync(`${this.db.name}-wal`, 'r');
      // INVARIANT: from here on, every commit path syncs the WAL itself
      this.db.pragma('synchronous = NORMAL');
    }
    return this.walFd;
  }

  /** Resolves once everything committed before the call is on disk. */
  private walSync(): Promise<void> {
    if (this.syncInFlight === null) {
      const fd = this.wal();
      this.syncInFlight = new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve()))).finally(() => {
        this.syncInFlight = null;
      });
      return this.syncInFlight;
    }
    // the sync under way may have started before this commit: it needs the next one
    this.syncNext ??= this.syncInFlight.catch(() => undefined).then(() => {
      this.syncNext = null;
      return this.walSync();
    });
    return this.syncNext;
  }

  /** Runs `work` in one write transaction (BEGIN IMMEDIATE: it waits for another process's writer, up to the busy timeout) and syncs it to disk. @throws GatehouseError `store_unavailable` when it cannot commit or sync. */
  transaction<T>(work: () => T): T {
    try {
      const result = this.db.transaction(work).immediate();
      fdatasyncSync(this.wal());
      return result;
    } catch (err) {
      throw storeError(err, this.dir);
    }
  }

  /**
   * Group commit: `work` runs with the others queued in this turn of the event loop, each in its own
   * savepoint inside one transaction, and the promise settles once that transaction is durable.
   * A `work` that throws rolls back only its own changes; a commit that fails rejects every one
   * with `store_unavailable`. `sync: false` is for records written after the fact (an outcome):
   * the promise settles at commit, and the next sync (or SQLite's checkpoint) makes it durable.
   */
  batched<T>(work: () => T, options: { sync?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, sync: options.sync ?? true, resolve: resolve as (v: unknown) => void, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const items = this.queue;
    this.queue = [];
    const results: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.db.transaction(() => {
        for (const item of items) {
          try {
            results.push({ ok: true, value: this.db.transaction(item.work)() });
          } catch (error) {
            results.push({ ok: false, error });
          }
        }
      }).immediate();
    } catch (err) {
      const error = storeError(err, this.dir);
      for (const item of items) item.reject(error);
      return;
    }
    items.forEach((item, i) => {
      const r = results[i];
      if (r !== undefined && !r.ok) item.reject(storeError(r.error, this.dir));
    });
    const committed = items.filter((_, i) => results[i]?.ok);
    if (committed.length === 0) return;
    if (committed.every((item) => !item.sync)) {
      items.forEach((item, i) => {
        const r = results[i];
        if (r?.ok) item.resolve(r.value);
      });
      return;
    }
    let synced: Promise<void>;
    try {
      synced = this.walSync();
    } catch (err) {
      synced = Promise.reject(err);
    }
    synced.then(
      () => items.forEach((item, i) => {
        const r = results[i];
        if (r?.ok) item.resolve(r.value);
      }),
      (err) => {
        const error = storeError(err, this.dir);
        for (const item of committed) item.reject(error);
      },
    );
  }

  /** Changes whenever another connection commits (SQLite's `data_version`). */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  // ── identities ──────────────────────────────────────────────────────────────────────────────

  /** @throws GatehouseError `name_taken` when an agent or reviewer already has the name. */
  addAgent(name: string, environment: string, hash: string, time: string): void {
    this.nameFree(name);
    this.q('INSERT INTO agents (name, environment, token_hash, created) VALUES (?, ?, ?, ?)').run(name, environment, hash, time);
  }

  /** @throws GatehouseError `name_taken` when an agent or reviewer already has the name. */
  addReviewer(name: string, hash: string, time: string): void {
    this.nameFree(name);
    this.q('INSERT INTO reviewers (name, token_hash, created) VALUES (?, ?, ?)').run(name, hash, time);
  }

  // INVARIANT: agents and reviewers share one namespace, so no agent can be a reviewer of itself.
  private nameFree(name: string): void {
    const taken = this.q('SELECT 1 FROM agents WHERE name = ? UNION ALL SELECT 1 FROM reviewers WHERE name = ?').get(name, name);
    if (taken !== undefined) throw new GatehouseError('name_taken', `the name \`${name}\` is already an agent or a reviewer`, { name });
  }

  /** Replaces an identity's token hash; false when there is no such identity. */
  rotateToken(table: 'agents' | 'reviewers', name: string, hash: string): boolean {
    return this.q(`UPDATE ${table} SET token_hash = ? WHERE name = ?`).run(hash, name).changes === 1;
  }

  removeIdentity(table: 'agents' | 'reviewers', name: string): boolean {
    return this.q(`DELETE FROM ${table} WHERE name = ?`).run(name).changes === 1;
  }

  agentByTokenHash(hash: string): Identity | undefined {
    return this.stmts.agentByHash!.get(hash) as Identity | undefined;
  }

  reviewerByTokenHash(hash: string): { name: string; created: string } | undefined {
    return this.stmts.reviewerByHash!.get(hash) as { name: string; created: string } | undefined;
  }

  agents(): Identity[] {
    return this.q('SELECT name, environment, created FROM agents ORDER BY name').all() as Identity[];
  }

  reviewers(): { name: string; created: string }[] {
    return this.q('SELECT name, created FROM reviewers ORDER BY name').all() as { name: string; created: string }[];
  }

  // ── sessions ────────────────────────────────────────────────────────────────────────────────

  insertSession(s: Omit<SessionRecord, 'state' | 'stateReason' | 'stateBy' | 'stateTime' | 'resumed'> & { tokenHash: string }): void {
    this.stmts.insertSession!.run(s);
  }

  session(id: string): SessionRecord | undefined {
    const row = this.stmts.session!.get(id) as Record<string, string> | undefined;
    return row === undefined ? undefined : sessionFrom(row);
  }

  /** A session with the hash of its token, in one read. */
  sessionWithTokenHash(id: string): { session: SessionRecord; tokenHash: string } | undefined {
    const row = this.stmts.session!.get(id) as Record<string, string> | undefined;
    return row === undefined ? undefined : { session: sessionFrom(row), tokenHash: row.token_hash as string };
  }

  /** Moves an active session to `state`; false when it was not active. */
  endSession(id: string, state: Exclude<SessionState, 'active'>, reason: string, by: string, time: string): boolean {
    return this.stmts.setSessionState!.run({ id, state, reason, by, time }).changes === 1;
  }

  /** Sessions, newest first. */
  sessions(limit = 200): SessionRecord[] {
    return (this.q('SELECT * FROM sessions ORDER BY created DESC LIMIT ?').all(limit) as Record<string, string>[]).map(sessionFrom);
  }

  /** Rows the session's statements have touched so far (sql_query outcomes). */
  rowsTouched(session: string): number {
    return (this.q('SELECT rows_touched AS n FROM sessions WHERE id = ?').get(session) as { n: number } | undefined)?.n ?? 0;
  }

  addRowsTouched(session: string, rows: number): void {
    this.q('UPDATE sessions SET rows_touched = rows_touched + ? WHERE id = ?').run(rows, session);
  }

  /** An agent's sessions that are still active. */
  activeSessionsOf(agent: string): SessionRecord[] {
    return (this.q(`SELECT * FROM sessions WHERE agent = ? AND state = 'active'`).all(agent) as Record<string, string>[]).map(sessionFrom);
  }

  /** Active sessions whose time is up at `now`. */
  sessionsDue(now: string): SessionRecord[] {
    return (this.q(`SELECT * FROM sessions WHERE state = 'active' AND expires <= ?`).all(now) as Record<string, string>[]).map(sessionFrom);
  }

  // ── approvals ───────────────────────────────────────────────────────────────────────────────

  insertApproval(a: Omit<ApprovalRecord, 'status' | 'resolved' | 'resolution' | 'votes'>): void {
    this.stmts.insertApproval!.run({ ...a, action: JSON.stringify(a.action), decision: JSON.stringify(a.decision) });
  }

  approval(id: string): ApprovalRecord | undefined {
    const row = this.stmts.approval!.get(id) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : this.approvalFrom(row);
  }

  /** The live (pending or approved, unexpired at `now`) approval of this exact action in this session: its id, status, expiry and reviewers required. */
  boundApproval(session: string, actionHash: string, now: string): Pick<ApprovalRecord, 'id' | 'status' | 'expires' | 'required'> | undefined {
    return this.stmts.bound!.get(session, actionHash, now) as Pick<ApprovalRecord, 'id' | 'status' | 'expires' | 'required'> | undefined;
  }

  /** Registered reviewers who voted to approve (a vote by a name that is no reviewer does not count). */
  approvingReviewers(approval: string): string[] {
    return (this.q(`SELECT v.reviewer FROM approval_votes v JOIN reviewers r ON r.name = v.reviewer WHERE v.approval = ? AND v.vote = 'approve' ORDER BY v.time`).all(approval) as { reviewer: string }[]).map((r) => r.reviewer);
  }

  /** Approvals of a session still waiting for reviewers. */
  pendingCount(session: string): number {
    return (this.q(`SELECT count(*) AS n FROM approvals WHERE session = ? AND status = 'pending'`).get(session) as { n: number }).n;
  }

  /** A session's approvals in these statuses. */
  openApprovals(session: string): ApprovalRecord[] {
    return (this.q(`SELECT * FROM approvals WHERE session = ? AND status IN ('pending', 'approved')`).all(session) as Record<string, unknown>[]).map((r) => this.approvalFrom(r));
  }

  /** Moves an approval from one status to another; false when it was not in `from` (someone else won). */
  moveApproval(id: string, from: ApprovalStatus, to: ApprovalStatus, time: string, resolution: string | null): boolean {
    return this.stmts.setApproval!.run({ id, from, to, time, resolution }).changes === 1;
  }

  /** @throws GatehouseError `already_voted` when this reviewer has voted on this approval. */
  addVote(approval: string, v: Vote): void {
    try {
      this.stmts.insertVote!.run(approval, v.reviewer, v.vote, v.reason, v.time);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new GatehouseError('already_voted', `${v.reviewer} has already voted on ${approval}`, { approval });
      throw err;
    }
  }

  /** Approvals, newest first (pending ones: soonest to expire first); `status` filters. */
  approvals(status?: ApprovalStatus, limit = 200): ApprovalRecord[] {
    // pending ones soonest to expire first, so a flood of new asks cannot push an old one out of view
    const rows = status === undefined
      ? this.q('SELECT * FROM approvals ORDER BY created DESC LIMIT ?').all(limit)
      : this.q(`SELECT * FROM approvals WHERE status = ? ORDER BY CASE WHEN status = 'pending' THEN expires END ASC, created DESC LIMIT ?`).all(status, limit);
    return (rows as Record<string, unknown>[]).map((r) => this.approvalFrom(r));
  }

  /** Pending or approved-but-unused approvals whose time is up at `now`. */
  approvalsDue(now: string): ApprovalRecord[] {
    return (this.q(`SELECT * FROM approvals WHERE status IN ('pending', 'approved') AND expires <= ?`).all(now) as Record<string, unknown>[]).map((r) => this.approvalFrom(r));
  }

  private approvalFrom(row: Record<string, unknown>): ApprovalRecord {
    return {
      id: row.id as string, session: row.session as string, actionHash: row.action_hash as string, decisionId: row.decision_id as string,
      action: JSON.parse(row.action as string), decision: JSON.parse(row.decision as string), reason: row.reason as string | null,
      required: row.required as number, status: row.status as ApprovalStatus, created: row.created as string, expires: row.expires as string,
      resolved: row.resolved as string | null, resolution: row.resolution as string | null,
      votes: this.stmts.votes!.all(row.id) as Vote[],
    };
  }

  // ── reviewer sign-ins (the web page) ───────────────────────────────────────────────────────

  insertWebSession(idHash: string, reviewer: string, csrf: string, expires: string): void {
    this.q('INSERT INTO web_sessions (id_hash, reviewer, csrf, expires) VALUES (?, ?, ?, ?)').run(idHash, reviewer, csrf, expires);
  }

  /** The signed-in reviewer of a cookie's hash, while unexpired at `now` and the reviewer still exists. */
  webSession(idHash: string, now: string): { reviewer: string; csrf: string } | undefined {
    return this.q(`SELECT w.reviewer, w.csrf FROM web_sessions w JOIN reviewers r ON r.name = w.reviewer WHERE w.id_hash = ? AND w.expires > ?`).get(idHash, now) as { reviewer: string; csrf: string } | undefined;
  }

  deleteWebSessionsOf(reviewer: string): void {
    this.q('DELETE FROM web_sessions WHERE reviewer = ?').run(reviewer);
  }

  /** Removes sign-ins that ended before `now`. */
  purgeWebSessions(now: string): void {
    this.q('DELETE FROM web_sessions WHERE expires <= ?').run(now);
  }

  deleteWebSession(idHash: string): void {
    this.q('DELETE FROM web_sessions WHERE id_hash = ?').run(idHash);
  }

  // ── MCP tool pins ───────────────────────────────────────────────────────────────────────────

  /** Pins, by agent, server and tool; `agent` and `server` filter. */
  toolPins(filter: { agent?: string | undefined; server?: string | undefined } = {}): ToolPin[] {
    const rows = this.q('SELECT * FROM tool_pins WHERE (@agent IS NULL OR agent = @agent) AND (@server IS NULL OR server = @server) ORDER BY agent, server, tool').all({ agent: filter.agent ?? null, server: filter.server ?? null });
    return (rows as Record<string, string | null>[]).map(pinFrom);
  }

  toolPin(agent: string, server: string, tool: string): ToolPin | undefined {
    const row = this.q('SELECT * FROM tool_pins WHERE agent = ? AND server = ? AND tool = ?').get(agent, server, tool) as Record<string, string | null> | undefined;
    return row === undefined ? undefined : pinFrom(row);
  }

  /** Pins a definition (first sight, or a reviewer accepting a change). */
  pinTool(agent: string, server: string, tool: string, hash: string, definition: unknown, time: string, by: string): void {
    this.q(`INSERT INTO tool_pins (agent, server, tool, hash, definition, status, pinned, pinned_by) VALUES (?, ?, ?, ?, ?, 'pinned', ?, ?)
      ON CONFLICT (agent, server, tool) DO UPDATE SET hash = excluded.hash, definition = excluded.definition, status = 'pinned', changed_hash = NULL, changed_definition = NULL, pinned = excluded.pinned, pinned_by = excluded.pinned_by`)
      .run(agent, server, tool, hash, JSON.stringify(definition), time, by);
  }

  /** Marks a pinned tool as changed to `hash`; the pinned definition stays until a reviewer accepts. */
  markToolChanged(agent: string, server: string, tool: string, hash: string, definition: unknown): void {
    this.q(`UPDATE tool_pins SET status = 'changed', changed_hash = ?, changed_definition = ? WHERE agent = ? AND server = ? AND tool = ?`).run(hash, JSON.stringify(definition), agent, server, tool);
  }

  // ── notifications ───────────────────────────────────────────────────────────────────────────

  insertNotification(approval: string, target: string, time: string): number {
    return Number(this.q(`INSERT INTO notifications (approval, target, status, attempts, updated) VALUES (?, ?, 'sending', 0, ?)`).run(approval, target, time).lastInsertRowid);
  }

  updateNotification(id: number, status: NotificationRecord['status'], attempts: number, lastError: string | null, time: string): void {
    this.q('UPDATE notifications SET status = ?, attempts = ?, last_error = ?, updated = ? WHERE id = ?').run(status, attempts, lastError, time, id);
  }

  failUnfinishedNotifications(error: string, time: string): void {
    this.q(`UPDATE notifications SET status = 'failed', last_error = ?, updated = ? WHERE status = 'sending'`).run(error, time);
  }

  notifications(limit = 100): NotificationRecord[] {
    return (this.q('SELECT id, approval, target, status, attempts, last_error AS lastError, updated FROM notifications ORDER BY id DESC LIMIT ?').all(limit)) as NotificationRecord[];
  }

  // ── secrets, phantom tokens, spend ──────────────────────────────────────────────────────────

  /** Stores a sealed (encrypted) secret; `sealed` is the vault's envelope, never the value. */
  putSecret(name: string, sealed: string, time: string): void {
    this.q('INSERT INTO secrets (name, sealed, created, updated) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated = excluded.updated').run(name, sealed, time, time);
  }

  sealedSecret(name: string): string | undefined {
    return (this.q('SELECT sealed FROM secrets WHERE name = ?').get(name) as { sealed: string } | undefined)?.sealed;
  }

  /** Secrets' names and times (never their values). */
  secrets(): { name: string; created: string; updated: string }[] {
    return this.q('SELECT name, created, updated FROM secrets ORDER BY name').all() as { name: string; created: string; updated: string }[];
  }

  removeSecret(name: string): boolean {
    return this.q('DELETE FROM secrets WHERE name = ?').run(name).changes === 1;
  }

  insertPhantomToken(t: Omit<PhantomToken, 'revoked'> & { tokenHash: string }): void {
    this.q('INSERT INTO phantom_tokens (id, token_hash, session, credential, expires, revoked) VALUES (@id, @tokenHash, @session, @credential, @expires, NULL)').run(t);
  }

  /** The phantom token whose hash is `hash`, revoked or not. */
  phantomToken(hash: string): PhantomToken | undefined {
    return this.q('SELECT id, session, credential, expires, revoked FROM phantom_tokens WHERE token_hash = ?').get(hash) as PhantomToken | undefined;
  }

  /** A session's phantom tokens with their hashes. */
  phantomTokensOf(session: string): (PhantomToken & { tokenHash: string })[] {
    return this.q('SELECT id, token_hash AS tokenHash, session, credential, expires, revoked FROM phantom_tokens WHERE session = ?').all(session) as (PhantomToken & { tokenHash: string })[];
  }

  /** Revokes a session's tokens; returns the ids revoked now. */
  revokePhantomTokens(session: string, time: string): string[] {
    const ids = (this.q('SELECT id FROM phantom_tokens WHERE session = ? AND revoked IS NULL').all(session) as { id: string }[]).map((r) => r.id);
    this.q('UPDATE phantom_tokens SET revoked = ? WHERE session = ? AND revoked IS NULL').run(time, session);
    return ids;
  }

  /** Cents spent through a credential: in one session, and by every session since `since` (ISO time). */
  spent(credential: string, session: string, since: string): { session: number; window: number } {
    const one = this.q('SELECT coalesce(sum(cents), 0) AS n FROM spend WHERE credential = ? AND session = ?').get(credential, session) as { n: number };
    const all = this.q('SELECT coalesce(sum(cents), 0) AS n FROM spend WHERE credential = ? AND time > ?').get(credential, since) as { n: number };
    return { session: one.n, window: all.n };
  }

  addSpend(credential: string, session: string, time: string, cents: number, decision: string): void {
    this.q('INSERT INTO spend (credential, session, time, cents, decision) VALUES (?, ?, ?, ?, ?)').run(credential, session, time, cents, decision);
  }

  // ── limits: actions, outcomes, sizes ────────────────────────────────────────────────────────

  /**
   * Counts an action let through, in one-second buckets per session and per agent (a window's
   * count is a sum of at most 60 rows, however fast the actions come); see {@link pruneRates}.
   */
  logAction(session: string, agent: string, time: string, creates: boolean): void {
    const second = Math.floor(Date.parse(time) / 1000);
    for (const [scope, key] of [['session', session], ['agent', agent]] as const) {
      this.q('INSERT INTO action_rate (scope, key, second, n) VALUES (?, ?, ?, 1) ON CONFLICT (scope, key, second) DO UPDATE SET n = n + 1').run(scope, key, second);
    }
    if (creates) this.q('UPDATE sessions SET resources_created = resources_created + 1 WHERE id = ?').run(session);
  }

  /** Drops rate buckets older than two minutes before `time` (ISO); the gateway's clock tick calls it. */
  pruneRates(time: string): void {
    this.q('DELETE FROM action_rate WHERE second <= ?').run(Math.floor(Date.parse(time) / 1000) - 120);
  }

  /** Actions let through in the 60 s up to `time` (ISO): of the session, and of all the agent's sessions. */
  actionsInMinute(session: string, agent: string, time: string): { session: number; agent: number } {
    const since = Math.floor(Date.parse(time) / 1000) - 60;
    const sum = (scope: string, key: string) => (this.q('SELECT coalesce(sum(n), 0) AS n FROM action_rate WHERE scope = ? AND key = ? AND second > ?').get(scope, key, since) as { n: number }).n;
    return { session: sum('session', session), agent: sum('agent', agent) };
  }

  resourcesCreated(session: string): number {
    return (this.q('SELECT resources_created AS n FROM sessions WHERE id = ?').get(session) as { n: number } | undefined)?.n ?? 0;
  }

  logOutcome(o: { session: string; actionHash: string; time: string; failed: boolean; class: string | null; stop: boolean; backoffSeconds: number; approval: boolean }): void {
    this.q('INSERT INTO outcome_log (session, action_hash, time, failed, class, stop, backoff_seconds, approval) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(o.session, o.actionHash, o.time, o.failed ? 1 : 0, o.class, o.stop ? 1 : 0, o.backoffSeconds, o.approval ? 1 : 0);
  }

  /** Failures of one action in a session since `since` (ISO), with the last one's terms. */
  failuresOf(session: string, actionHash: string, since: string): { count: number; last: { time: string; class: string; backoffSeconds: number; approval: boolean } | null } {
    // INVARIANT: both read the partial index of failures (outcome_log_failures): successes, however many, are never scanned
    const n = this.q('SELECT count(*) AS n FROM outcome_log INDEXED BY outcome_log_failures WHERE session = ? AND action_hash = ? AND failed = 1 AND time > ?').get(session, actionHash, since) as { n: number };
    const last = this.q('SELECT time, class, backoff_seconds AS backoffSeconds, approval FROM outcome_log INDEXED BY outcome_log_failures WHERE session = ? AND action_hash = ? AND failed = 1 AND time > ? ORDER BY time DESC LIMIT 1')
      .get(session, actionHash, since) as { time: string; class: string; backoffSeconds: number; approval: number } | undefined;
    return { count: n.n, last: last === undefined ? null : { ...last, approval: last.approval === 1 } };
  }

  /** Outcomes of a session since `since` (ISO): all, and failed. */
  outcomesSince(session: string, since: string): { total: number; failed: number } {
    return this.q('SELECT count(*) AS total, coalesce(sum(failed), 0) AS failed FROM outcome_log WHERE session = ? AND time > ?').get(session, since) as { total: number; failed: number };
  }

  logSize(session: string, target: string, value: number, time: string): void {
    this.q('INSERT INTO scale_log (session, target, value, time) VALUES (?, ?, ?, ?)').run(session, target, value, time);
  }

  /** Sizes set for a target in a session since `since`, oldest first. */
  sizesSince(session: string, target: string, since: string): number[] {
    return (this.q('SELECT value FROM scale_log WHERE session = ? AND target = ? AND time > ? ORDER BY time, rowid').all(session, target, since) as { value: number }[]).map((r) => r.value);
  }

  /** A decision's action hash, when the decision is in the session's trail. */
  decisionHash(session: string, decision: string): string | undefined {
    const row = this.q(`SELECT json_extract(record, '$.actionHash') AS h FROM audit INDEXED BY audit_decision WHERE json_extract(record, '$.type') = 'decision' AND json_extract(record, '$.decision') = ? AND json_extract(record, '$.session') = ? LIMIT 1`).get(decision, session) as { h: string } | undefined;
    return row?.h;
  }

  /** A halted session made active again by a reviewer; false when it was not halted. */
  resumeSession(id: string, reason: string, by: string, time: string): boolean {
    return this.q(`UPDATE sessions SET state = 'active', state_reason = ?, state_by = ?, state_time = ?, resumed = ? WHERE id = ? AND state = 'halted'`).run(reason, by, time, time, id).changes === 1;
  }

  /** Gives a resumed session back the phantom tokens its halt revoked. */
  restorePhantomTokens(session: string, revokedAt: string): string[] {
    const ids = (this.q('SELECT id FROM phantom_tokens WHERE session = ? AND revoked = ?').all(session, revokedAt) as { id: string }[]).map((r) => r.id);
    this.q('UPDATE phantom_tokens SET revoked = NULL WHERE session = ? AND revoked = ?').run(session, revokedAt);
    return ids;
  }

  // ── agent hooks: their sessions, and which decision each tool call got ─────────────────────

  /** The Gatehouse session a hook's own session key (Claude Code's session_id) maps to. */
  hookSession(key: string): { session: string; token: string | null; gateway: string | null } | undefined {
    return this.q('SELECT session, token, gateway FROM hook_sessions WHERE key = ?').get(key) as { session: string; token: string | null; gateway: string | null } | undefined;
  }

  setHookSession(key: string, session: string, token: string | null, gateway: string | null): void {
    this.q('INSERT INTO hook_sessions (key, session, token, gateway) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET session = excluded.session, token = excluded.token, gateway = excluded.gateway').run(key, session, token, gateway);
  }

  /** The session token a hook keeps for a gateway session. */
  hookSessionOf(session: string): string | undefined {
    return (this.q('SELECT token FROM hook_sessions WHERE session = ?').get(session) as { token: string | null } | undefined)?.token ?? undefined;
  }

  setHookCall(toolUseId: string, session: string, decision: string, time: string): void {
    this.q('INSERT INTO hook_calls (tool_use_id, session, decision, time) VALUES (?, ?, ?, ?) ON CONFLICT (tool_use_id) DO UPDATE SET session = excluded.session, decision = excluded.decision, time = excluded.time').run(toolUseId, session, decision, time);
  }

  hookCall(toolUseId: string): { session: string; decision: string } | undefined {
    return this.q('SELECT session, decision FROM hook_calls WHERE tool_use_id = ?').get(toolUseId) as { session: string; decision: string } | undefined;
  }

  close(): void {
    if (this.queue.length > 0) this.flush();
    if (this.walFd !== null) {
      try {
        fdatasyncSync(this.walFd);
      } finally {
        closeSync(this.walFd);
        this.walFd = null;
      }
    }
    this.db.close();
  }
}

function pinFrom(row: Record<string, string | null>): ToolPin {
  return {
    agent: row.agent as string, server: row.server as string, tool: row.tool as string, hash: row.hash as string, definition: JSON.parse(row.definition as string),
    status: row.status as ToolPin['status'], changedHash: row.changed_hash ?? null,
    changedDefinition: row.changed_definition === null || row.changed_definition === undefined ? null : JSON.parse(row.changed_definition),
    pinned: row.pinned as string, pinnedBy: row.pinned_by as string,
  };
}

function sessionFrom(row: Record<string, string>): SessionRecord {
  return {
    id: row.id!, agent: row.agent!, environment: row.environment!, task: row.task!, workspace: row.workspace!, home: row.home!,
    created: row.created!, expires: row.expires!, state: row.state as SessionState,
    stateReason: row.state_reason ?? null, stateBy: row.state_by ?? null, stateTime: row.state_time ?? null, resumed: row.resumed ?? null,
  };
}
