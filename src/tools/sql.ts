import pg from 'pg';
import type { Part } from '../actions/action.js';
import { analyzeAction } from '../actions/classify.js';
import type { Observed } from '../gateway/gateway.js';
import type { Judge } from '../enforcers/mcp/judge.js';
import { GatehouseError } from '../gatehouse-error.js';

/**
 * `sql_query`: SQL judged by the pipeline and run by Gatehouse against a configured PostgreSQL, so
 * that the limits hold in the database itself.
 *
 * - Statements that only read run in a `READ ONLY` transaction.
 * - Writes are first run in a transaction that is rolled back (a dry run): the rows each statement
 *   touches are counted by the database and sent with the action (`observed`), so the policy's
 *   `maxRowsPerStatement` / `maxRowsPerSession` can raise the verdict to ask, and the reviewer sees
 *   "DELETE on orders would touch 100,000 rows". Once allowed (or approved), the statements run
 *   again in a transaction that commits only if every count is still the one that was judged.
 * - Every transaction has `statement_timeout` and `lock_timeout`. Transaction control and setting
 *   changes are refused: they would step outside the transaction that carries the limits.
 * - Errors keep their SQLSTATE (PostgreSQL docs, Appendix A) for the error taxonomy.
 */

export interface SqlOptions {
  /** Milliseconds each statement may run or wait for a lock (default 30,000). */
  timeoutMs?: number;
  /** Rows of a result returned to the agent at most (default 200). */
  maxResultRows?: number;
  /** The agent cancelled the call: a held approval is withdrawn and nothing runs. */
  signal?: AbortSignal;
}

export interface ToolResult {
  [key: string]: unknown;
  content: { type: 'text'; text: string }[];
  isError?: boolean;
}

/**
 * Refuses a database role that could step outside every limit sql_query sets: a superuser (COPY …
 * TO PROGRAM, ALTER SYSTEM, reading any file), a role with REPLICATION or BYPASSRLS. Give the
 * tools a role of their own with only the grants the agent's task needs.
 * @throws GatehouseError `database_role_unsafe` (`data.role`, `data.attributes`), or the driver's
 *   error when the database cannot be reached.
 */
export async function checkRole(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ role: string; rolsuper: boolean; rolreplication: boolean; rolbypassrls: boolean }>(
    'SELECT rolname AS role, rolsuper, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user');
  const row = rows[0];
  if (row === undefined) throw new GatehouseError('database_role_unsafe', 'the database role could not be looked up in pg_roles; sql_query is not offered', { role: null, attributes: [] });
  const attributes = [row.rolsuper && 'SUPERUSER', row.rolreplication && 'REPLICATION', row.rolbypassrls && 'BYPASSRLS'].filter((a): a is string => typeof a === 'string');
  if (attributes.length > 0) {
    throw new GatehouseError('database_role_unsafe', `the database role ${row.role} has ${attributes.join(', ')}: it could step outside every limit sql_query sets (COPY … TO PROGRAM, ALTER SYSTEM, replication). Connect as a role of its own with only the grants the task needs, e.g. CREATE ROLE agent LOGIN; GRANT SELECT, UPDATE ON orders TO agent`, { role: row.role, attributes });
  }
}

/** Statements that change rows: when they cannot be counted, a reviewer decides (DDL is left to the policy). */
const ROW_WRITES = new Set(['insert', 'update', 'delete', 'merge', 'copy', 'truncate']);
/** Statements a dry run may execute (rolled back): plain DML, no other effects. */
const DML = new Set(['select', 'insert', 'update', 'delete', 'merge']);
/** Functions a dry run may call: pure builtins (anything else, such as dblink or lo_import, could act outside the transaction). */
const PURE_FUNCTIONS = new Set(['now', 'current_timestamp', 'current_date', 'clock_timestamp', 'date_trunc', 'date_part', 'extract', 'age', 'make_interval',
  'coalesce', 'nullif', 'greatest', 'least', 'lower', 'upper', 'length', 'trim', 'btrim', 'ltrim', 'rtrim', 'substring', 'substr', 'concat', 'replace', 'left', 'right',
  'abs', 'round', 'floor', 'ceil', 'ceiling', 'mod', 'count', 'sum', 'min', 'max', 'avg', 'array_agg', 'string_agg', 'jsonb_build_object', 'json_build_object',
  'to_char', 'to_date', 'to_timestamp', 'gen_random_uuid', 'md5', 'any', 'array_length', 'cardinality', 'exists']);

const text = (t: string, isError = false): ToolResult => ({ content: [{ type: 'text', text: t }], ...(isError ? { isError: true } : {}) });

/** Why sql_query will not run these parts, or null. */
function refusal(parts: Part[]): string | null {
  for (const p of parts) {
    if (p.kind !== 'sql') continue;
    if (p.statement === 'transaction') return 'transaction control (BEGIN, COMMIT, SAVEPOINT…) is not allowed: sql_query runs each call in its own transaction';
    if (p.settings.length > 0 || p.statement === 'set' || p.statement === 'reset' || p.functions.includes('set_config')) return 'changing settings (SET, RESET, set_config) is not allowed: the transaction carries the limits';
  }
  return null;
}

/** The statements' commands and counts, in order. */
function counts(results: pg.QueryResult | pg.QueryResult[]): { command: string; rows: number }[] {
  return (Array.isArray(results) ? results : [results]).map((r) => ({ command: r.command ?? 'UNKNOWN', rows: r.rowCount ?? 0 }));
}

/** A database error as a tool error that keeps its class: the SQLSTATE in the text and in `structuredContent.sqlstate`. */
function sqlError(err: unknown): ToolResult {
  const e = err as { code?: string; message?: string };
  return { ...text(`ERROR ${e.code ?? ''}: ${e.message ?? String(err)}`.replace('ERROR : ', 'ERROR: '), true), structuredContent: { sqlstate: e.code ?? null } };
}

async function inTransaction<T>(pool: pg.Pool, mode: 'READ ONLY' | 'READ WRITE', timeoutMs: number, work: (c: pg.PoolClient) => Promise<T>, commit: (value: T) => boolean): Promise<T> {
  const client = await pool.connect();
  // statement_timeout holds each statement; this deadline holds the whole call (many statements in one text)
  const pid = (client as unknown as { processID?: number }).processID;
  const deadline = setTimeout(() => {
    if (pid !== undefined) pool.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
  }, timeoutMs);
  try {
    await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED ${mode}`);
    await client.query(`SET LOCAL statement_timeout = ${Math.floor(timeoutMs)}; SET LOCAL lock_timeout = ${Math.floor(timeoutMs)}; SET LOCAL idle_in_transaction_session_timeout = ${Math.floor(timeoutMs) * 2}`);
    const value = await work(client);
    await client.query(commit(value) ? 'COMMIT' : 'ROLLBACK');
    return value;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(deadline);
    // INVARIANT: nothing of one call (advisory locks, temp tables, prepared statements, session settings) reaches the next on a pooled connection
    const clean = await client.query('DISCARD ALL').then(() => true, () => false);
    client.release(!clean);
  }
}

/**
 * Judges and, when allowed, runs `sql`. Never throws: every failure is a tool error result.
 * @param judge the session's judge (local or a gateway); `wait` present when a reviewer can answer.
 */
export async function sqlQuery(pool: pg.Pool, judge: Judge, sql: string, options: SqlOptions = {}, reason?: string): Promise<ToolResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const body: Record<string, unknown> = { kind: 'sql', sql, ...(reason ? { reason } : {}) };
  const analysis = analyzeAction({ kind: 'sql', sql, dialect: 'postgres' }, { cwd: '/', home: '/' });
  const parts = analysis.ok ? analysis.parts : [];
  const readOnly = analysis.ok && parts.length > 0 && parts.every((p) => p.kind === 'sql' && p.readOnly);
  // writes the database can count in a rolled-back run: every write is a statement of its own (a
  // DELETE inside a WITH of a SELECT would be counted as the SELECT's rows), plain DML, pure functions
  const measurable = analysis.ok && !readOnly && parts.every((p) => p.kind === 'sql' && DML.has(p.statement) && p.functions.every((f) => PURE_FUNCTIONS.has(f)) && (p.readOnly || !p.nested));
  try {
    const first = await judge.decide(measurable ? { ...body, measure: true } : body);
    if (first.verdict === 'deny') return text(`Gatehouse denied this SQL (rule ${first.rule.id}): ${first.reasons.join('; ')}`, true);
    const refused = refusal(parts);
    if (refused !== null) {
      await judge.outcome({ decision: first.decision, status: 'refused', error: `not run: ${refused}` });
      return text(`Gatehouse: ${refused}`, true);
    }
    let decided = first;
    let judged = body;
    const hidden = measurable ? await hiddenWrites(pool, parts) : null;
    if (measurable && hidden !== null) {
      // rows a trigger, rule or cascade touches are not in the count, and a trigger may act outside the transaction: no dry run, a reviewer decides
      const kinds = [...new Set(parts.flatMap((p) => (p.kind === 'sql' && !p.readOnly ? [p.statement.toUpperCase()] : [])))].join(', ').slice(0, 40);
      judged = { ...body, observed: { statements: [{ command: kinds || 'WRITE', tables: [], rows: null, note: hidden.slice(0, 500) }] } };
      decided = await judge.decide(judged);
    } else if (measurable) {
      // the dry run: the database counts, nothing stays
      const observed: Observed = { statements: counts(await inTransaction(pool, 'READ WRITE', timeoutMs, (c) => c.query(sql), () => false)).map((s) => ({ ...s, tables: tablesOf(parts, s.command) })) };
      judged = { ...body, observed };
      decided = await judge.decide(judged);
    } else if (!readOnly && decided.verdict === 'allow' && parts.some((p) => p.kind === 'sql' && !p.readOnly && ROW_WRITES.has(p.statement))) {
      // INVARIANT: a write whose rows cannot be counted is never allowed on the policy alone: the limits cannot be checked, so a reviewer decides
      const kinds = [...new Set(parts.flatMap((p) => (p.kind === 'sql' && !p.readOnly ? [p.statement.toUpperCase()] : [])))];
      judged = { ...body, observed: { statements: [{ command: kinds.join(', ') || 'WRITE', tables: [], rows: null }] } };
      decided = await judge.decide(judged);
    }
    if (decided.verdict === 'ask') decided = await approved(judge, decided, judged, options.signal);
    if (decided.verdict !== 'allow') return text(`Gatehouse: ${decided.reasons.join('; ')}`, true);
    if (options.signal?.aborted) return text('Gatehouse: the call was cancelled; nothing was run', true);
    // the counts an approval was given for; an uncounted write was approved as it is
    const seen = (judged.observed as Observed | undefined)?.statements;
    const expected = seen?.every((st) => st.rows !== null) ? (seen as { rows: number }[]) : undefined;
    let result: pg.QueryResult | pg.QueryResult[];
    try {
      result = await inTransaction(pool, readOnly ? 'READ ONLY' : 'READ WRITE', timeoutMs, (c) => c.query(sql), (r) => expected === undefined || sameCounts(counts(r), expected));
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const outcome = await judge.outcome({ decision: decided.decision, status: 'error', ...(e.code ? { sqlstate: e.code } : {}), error: `${e.code ?? ''} ${e.message ?? ''}`.trim() });
      const shown = sqlError(err);
      if (outcome?.message !== undefined) shown.content.push({ type: 'text', text: `Gatehouse: ${outcome.message}` });
      return shown;
    }
    const got = counts(result);
    if (expected !== undefined && !sameCounts(got, expected)) {
      const error = `the rows changed since they were counted (${expected.map((s) => s.rows).join(', ')} judged, ${got.map((s) => s.rows).join(', ')} now): rolled back; ask again`;
      await judge.outcome({ decision: decided.decision, status: 'refused', error });
      return text(`Gatehouse: ${error}`, true);
    }
    const touched = readOnly ? 0 : got.reduce((a, s) => a + s.rows, 0);
    await judge.outcome({ decision: decided.decision, status: 'ok', ...(readOnly ? {} : { rows: touched }) });
    return render(result, options.maxResultRows ?? 200);
  } catch (err) {
    return (err as { code?: string }).code !== undefined ? sqlError(err) : text(`Gatehouse: the SQL was not run: ${(err as Error).message}`, true);
  }
}

/**
 * Waits for a reviewer and judges the same action again (which uses the approval); a deny when
 * nobody can answer, or when the agent cancels the call (its approval is then withdrawn).
 */
export async function approved(judge: Judge, asked: Awaited<ReturnType<Judge['decide']>>, body: Record<string, unknown>, signal: AbortSignal | undefined, what = 'this SQL'): Promise<Awaited<ReturnType<Judge['decide']>>> {
  const deny = (why: string) => ({ ...asked, verdict: 'deny' as const, reasons: [why] });
  if (judge.wait === undefined || asked.approval === undefined) return deny(`${what} needs a reviewer's approval (rule ${asked.rule.id}): ${asked.reasons.join('; ')}. Nobody can approve it without a gateway service (run with --gateway URL --token T).`);
  let status: string;
  try {
    status = await judge.wait(asked.approval.id, signal ?? new AbortController().signal);
  } catch (err) {
    status = signal?.aborted ? 'cancelled' : `unknown (${(err as Error).message})`;
  }
  if (signal?.aborted) {
    await judge.withdraw?.(asked.approval.id);
    return deny('the call was cancelled; its approval is withdrawn and nothing was run');
  }
  if (status !== 'approved') return deny(`the approval ${asked.approval.id} ended ${status}; nothing was run`);
  return judge.decide(body);
}

/**
 * Why the tables of these statements would touch rows the count cannot see: user triggers, rules,
 * foreign keys that cascade into other tables, views or foreign tables (catalogs per PostgreSQL
 * docs, chapter 53). Null when there is none.
 */
async function hiddenWrites(pool: pg.Pool, parts: Part[]): Promise<string | null> {
  const tables = [...new Set(parts.flatMap((p) => (p.kind === 'sql' && !p.readOnly ? p.tables : [])))];
  if (tables.length === 0) return null;
  const { rows } = await pool.query<{ t: string; why: string | null }>(`
    SELECT c.oid::regclass::text AS t,
      CASE WHEN c.relkind IN ('v', 'm', 'f') THEN 'is a view or foreign table'
           WHEN EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal) THEN 'has triggers'
           WHEN EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN') THEN 'has rules'
           WHEN EXISTS (SELECT 1 FROM pg_constraint k WHERE k.confrelid = c.oid AND k.contype = 'f' AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))) THEN 'has foreign keys that cascade into other tables'
      END AS why
    FROM unnest($1::text[]) AS n(name) JOIN pg_class c ON c.oid = to_regclass(n.name)`, [tables]);
  const found = rows.filter((r) => r.why !== null);
  return found.length === 0 ? null : found.map((r) => `${r.t} ${r.why}`).join('; ');
}

function sameCounts(a: { rows: number }[], b: { rows: number }[]): boolean {
  return a.length === b.length && a.every((s, i) => s.rows === b[i]?.rows);
}

/** Tables of the parts whose statement matches a command tag (DELETE → delete). */
function tablesOf(parts: Part[], command: string): string[] {
  const kind = command.toLowerCase();
  return [...new Set(parts.flatMap((p) => (p.kind === 'sql' && p.statement === kind ? p.tables.flatMap((t) => (t === null ? [] : [t])) : [])))].slice(0, 20);
}

function render(result: pg.QueryResult | pg.QueryResult[], maxRows: number): ToolResult {
  const results = Array.isArray(result) ? result : [result];
  const last = [...results].reverse().find((r) => r.fields?.length > 0) ?? results[results.length - 1];
  const summary = counts(results).map((s) => `${s.command} ${s.rows}`).join('; ');
  if (last === undefined || !last.fields?.length) return text(summary);
  const rows = last.rows.slice(0, maxRows);
  const more = last.rows.length > maxRows ? `\n(${last.rows.length - maxRows} more rows not shown)` : '';
  return { ...text(`${summary}\n${JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 0)}${more}`), structuredContent: { rows, rowCount: last.rowCount ?? rows.length } };
}
