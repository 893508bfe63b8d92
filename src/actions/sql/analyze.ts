import { loadModule, parseSync } from 'libpg-query';
import type { FilePart, PartTag, SqlPart, WhereFact } from '../action.js';

/**
 * SQL analysis with the PostgreSQL parser (libpg-query, PostgreSQL 18's grammar as WASM).
 *
 * Every statement of a text, and every statement nested inside another (a DELETE in a CTE, the
 * statement EXPLAIN ANALYZE runs, a subquery), becomes its own {@link SqlPart}. Node names follow
 * libpg-query's JSON AST (PostgreSQL's `parsenodes.h`).
 */

let loaded: Promise<void> | null = null;

/** Loads the parser's WASM once; every later call resolves at once. */
export function loadSqlParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/**
 * `parts`: the statements. `files`: files on the database server that statements read or write
 * (`pg_read_file('/path')`, `lo_import`, `COPY … FROM '/path'`); a relative path is unknown.
 */
export type SqlAnalysis = { ok: true; parts: SqlPart[]; files: FilePart[] } | { ok: false; reason: string };

/** Server functions that read (or, for lo_export, write) the file named by their first argument. */
const FILE_FUNCTIONS: Record<string, 'file_read' | 'file_write'> = {
  pg_read_file: 'file_read', pg_read_binary_file: 'file_read', pg_stat_file: 'file_read', lo_import: 'file_read',
  pg_ls_dir: 'file_read', lo_export: 'file_write', pg_file_write: 'file_write',
};

type Node = Record<string, unknown>;

/** Statement node names whose kind is not the plain snake case of the name. */
const STATEMENT_NAMES: Record<string, string> = {
  DropdbStmt: 'drop_database',
  CreatedbStmt: 'create_database',
  AlterDatabaseStmt: 'alter_database',
  CreateStmt: 'create_table',
  IndexStmt: 'create_index',
  ViewStmt: 'create_view',
  CreateTableAsStmt: 'create_table_as',
  TransactionStmt: 'transaction',
  VariableSetStmt: 'set',
  VariableShowStmt: 'show',
  DropRoleStmt: 'drop_role',
  DropOwnedStmt: 'drop_owned',
  DropTableSpaceStmt: 'drop_tablespace',
  RenameStmt: 'rename',
};

/** Functions with effects beyond reading (admin, file access, sequences); they make a SELECT not read-only. */
const WRITING_FUNCTIONS = new Set([
  'nextval', 'setval', 'set_config', 'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf',
  'pg_rotate_logfile', 'pg_promote', 'pg_switch_wal', 'pg_drop_replication_slot', 'pg_stat_reset',
  'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_file_write', 'lo_import', 'lo_export',
  'lo_unlink', 'dblink', 'dblink_exec', 'dblink_send_query', 'dblink_open', 'dblink_connect', 'pg_advisory_lock', 'pg_sleep',
  'query_to_xml', 'query_to_xml_and_xmlschema', 'cursor_to_xml', 'pg_catalog.set_config', 'setseed', 'lastval', 'currval',
  // effects that survive ROLLBACK and READ ONLY: slots keep WAL forever, locks outlive the call, resets and messages reach others
  'pg_notify', 'pg_logical_emit_message', 'pg_log_backend_memory_contexts', 'pg_stat_reset_shared', 'pg_stat_reset_single_table_counters',
  'pg_stat_reset_single_function_counters', 'pg_stat_reset_slru', 'pg_stat_reset_replication_slot', 'pg_stat_reset_subscription_stats',
  'dblink_connect_u', 'pg_backup_start', 'pg_backup_stop', 'pg_start_backup', 'pg_stop_backup', 'pg_create_restore_point',
  'pg_wal_replay_pause', 'pg_wal_replay_resume', 'pg_import_system_collations', 'pg_replication_slot_advance',
]);

/** Function name prefixes with the same kind of effects (replication slots and origins, advisory locks). */
const WRITING_PREFIXES = ['pg_create_', 'pg_copy_', 'pg_advisory', 'pg_try_advisory', 'pg_replication_origin_', 'pg_logical_slot_'];

function writes(fn: string): boolean {
  const name = fn.startsWith('pg_catalog.') ? fn.slice('pg_catalog.'.length) : fn;
  return WRITING_FUNCTIONS.has(name) || WRITING_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Analyzes a SQL text.
 *
 * @param text   PostgreSQL text, any number of statements.
 * @param origin where the text came from, prefixed to each part's origin (e.g. "the SQL of `psql -c`").
 * @returns the parts, or `{ok: false, reason}` with the parser's message on a syntax error.
 * @throws never; call {@link loadSqlParser} first (an unloaded parser is reported as a failure).
 * @example analyzeSql('DELETE FROM orders', 'the action') // one part: statement 'delete', where 'none'
 */
export function analyzeSql(text: string, origin: string): SqlAnalysis {
  let tree: { stmts?: { stmt: Node; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parseSync(text) as typeof tree;
  } catch (err) {
    const e = err as { message?: string; sqlDetails?: { cursorPosition?: number } };
    const at = e.sqlDetails?.cursorPosition;
    return { ok: false, reason: `SQL the PostgreSQL parser rejects: ${e.message ?? String(err)}${at !== undefined ? ` (at offset ${at})` : ''}` };
  }
  const parts: SqlPart[] = [];
  const files: FilePart[] = [];
  const stmts = tree.stmts ?? [];
  stmts.forEach((raw, i) => {
    const start = raw.stmt_location ?? 0;
    const statementText = text.slice(start, raw.stmt_len !== undefined ? start + raw.stmt_len : undefined).trim();
    const where = stmts.length > 1 ? `statement ${i + 1} of ${stmts.length} in ${origin}` : origin;
    collectStatement(raw.stmt, where, statementText, parts, files);
  });
  return { ok: true, parts, files };
}

/** Adds the statement wrapped in `wrapper` ({SelectStmt: {...}}) and every statement nested in it. */
function collectStatement(wrapper: Node, origin: string, text: string, parts: SqlPart[], files: FilePart[], nestedIn = false): void {
  const [name, body] = Object.entries(wrapper)[0] as [string, Node];
  const part: SqlPart = {
    kind: 'sql', statement: statementKind(name, body), tables: [], where: null,
    readOnly: false, functions: [], settings: [], tags: [], origin, text, nested: nestedIn,
  };
  parts.push(part);
  const nested: { node: Node; via: string }[] = [];
  walk(body, part, nested, name === 'ExplainStmt' && !explainAnalyzes(body) ? 'skip-query' : '', '', files);
  if (name === 'CopyStmt' && typeof body.filename === 'string' && body.is_program !== true) {
    files.push(serverFile(body.is_from === true ? 'file_read' : 'file_write', body.filename, `the server file of ${origin}`));
  }
  if (name === 'UpdateStmt' || name === 'DeleteStmt') part.where = whereFact(body.whereClause as Node | undefined, body.relation as Node | undefined, joinFiltered(body));
  if (name === 'VariableSetStmt' && typeof body.name === 'string') part.settings.push(body.name);
  // ALTER SYSTEM / DATABASE / ROLE … SET name = …
  const set = body.setstmt as Node | undefined;
  if (typeof set?.name === 'string') part.settings.push(set.name);
  part.readOnly = isReadOnly(name, body) && !part.functions.some(writes);
  const tags: PartTag[] = [];
  if (name === 'DoStmt' || name === 'ExecuteStmt') tags.push('inline-code');
  if (name === 'CopyStmt' && body.is_program === true) tags.push('program-code');
  part.tags = tags;
  part.tables = [...new Set(part.tables)];
  part.functions = [...new Set(part.functions)];
  for (const n of nested) collectStatement(n.node, `${describe(Object.keys(n.node)[0] ?? '')} ${n.via} in ${origin}`, text, parts, files, true);
}

function serverFile(kind: 'file_read' | 'file_write', path: unknown, origin: string): FilePart {
  const p = typeof path === 'string' && path.startsWith('/') ? path.replace(/\/+$/, '') || '/' : null;
  return { kind, path: p, origin, tags: p === null ? ['unknown-target'] : [] };
}

/** Collects tables and functions of one statement; nested statements are queued, not walked. */
function walk(node: unknown, part: SqlPart, nested: { node: Node; via: string }[], mode: string, key = '', files: FilePart[] = []): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, part, nested, mode, key, files);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  // INVARIANT: a RangeVar appears tagged ({RangeVar: {…}}) or inlined (`relation: {relname…}`).
  if (typeof (node as Node).relname === 'string') part.tables.push(rangeVarName(node as Node));
  for (const [k, v] of Object.entries(node as Node)) {
    // INVARIANT: node names are PascalCase (`SelectStmt`); a camelCase key (`selectStmt`) is a field holding one
    if (/^[A-Z]\w*Stmt$/.test(k) && v !== null && typeof v === 'object') {
      if (mode === 'skip-query') continue; // plain EXPLAIN plans its statement, never runs it
      nested.push({ node: { [k]: v } as Node, via: viaText(key) });
      continue;
    }
    // `(row).name` may call a function name(row): whatever it is, it is listed as one that is not known
    if (k === 'A_Indirection' && JSON.stringify(v).includes('"String"')) part.functions.push('(attribute call)');
    if (k === 'FuncCall') {
      const names = ((v as Node).funcname as Node[] | undefined) ?? [];
      const last = names[names.length - 1] as { String?: { sval?: string } } | undefined;
      if (last?.String?.sval) part.functions.push(last.String.sval.toLowerCase());
      // a function of another schema may shadow a builtin's name (`evil.lower`): its qualified name is listed too
      const schema = (names.length > 1 ? (names[names.length - 2] as { String?: { sval?: string } }).String?.sval?.toLowerCase() : undefined);
      if (schema !== undefined && schema !== 'pg_catalog' && last?.String?.sval) part.functions.push(`${schema}.${last.String.sval.toLowerCase()}`);
      const fileKind = FILE_FUNCTIONS[last?.String?.sval?.toLowerCase() ?? ''];
      if (fileKind !== undefined) files.push(serverFile(fileKind, fold((((v as Node).args as Node[] | undefined) ?? [])[fileKind === 'file_write' ? 1 : 0] ?? {}), `the server file of ${part.origin}`));
      if (last?.String?.sval?.toLowerCase() === 'set_config') {
        const first = fold((((v as Node).args as Node[] | undefined) ?? [])[0] ?? {});
        if (typeof first === 'string') part.settings.push(first);
      }
    } else if (k === 'objects' && part.statement.startsWith('drop_')) {
      for (const o of (v as Node[]) ?? []) part.tables.push(objectName(o));
    } else if (k === 'dbname' && typeof v === 'string') part.tables.push(v);
    walk(v, part, nested, mode, k, files);
  }
}

function viaText(key: string): string {
  switch (key) {
    case 'ctequery': return 'in a WITH clause';
    case 'query': return 'run by the statement';
    case 'subselect': case 'subquery': return 'in a subquery';
    default: return 'nested';
  }
}

function describe(nodeName: string): string {
  const kind = STATEMENT_NAMES[nodeName] ?? snake(nodeName.replace(/Stmt$/, ''));
  return `a ${kind.toUpperCase().replace(/_/g, ' ')}`;
}

function statementKind(name: string, body: Node): string {
  if (name === 'DropStmt') return 'drop_' + objtype(body.removeType);
  if (name === 'AlterTableStmt') return 'alter_' + objtype(body.objtype);
  if (name === 'GrantStmt') return body.is_grant === true ? 'grant' : 'revoke';
  if (name === 'GrantRoleStmt') return body.is_grant === true ? 'grant_role' : 'revoke_role';
  return STATEMENT_NAMES[name] ?? snake(name.replace(/Stmt$/, ''));
}

function objtype(v: unknown): string {
  return typeof v === 'string' ? v.replace(/^OBJECT_/, '').toLowerCase() : 'object';
}

function snake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Whether EXPLAIN runs its statement: any `analyze` option not clearly false (PostgreSQL takes the last). */
function explainAnalyzes(body: Node): boolean {
  let analyze = false;
  for (const opt of (body.options as Node[] | undefined) ?? []) {
    const d = opt.DefElem as Node | undefined;
    if (d?.defname !== 'analyze') continue;
    const arg = d.arg as Node | undefined;
    const b = (arg?.Boolean as { boolval?: boolean } | undefined);
    const s = (arg?.String as { sval?: string } | undefined)?.sval;
    const off = b !== undefined ? b.boolval !== true : s !== undefined ? ['false', 'off', '0', 'no'].includes(s.toLowerCase()) : false;
    analyze = analyze || !off;
  }
  return analyze;
}

function isReadOnly(name: string, body: Node): boolean {
  switch (name) {
    case 'SelectStmt': return body.intoClause === undefined && body.lockingClause === undefined;
    case 'ExplainStmt': return true; // what EXPLAIN ANALYZE runs is a part of its own
    case 'VariableShowStmt': return true;
    case 'CopyStmt': return body.is_from !== true && body.filename === undefined && body.is_program !== true;
    default: return false;
  }
}

function rangeVarName(rv: Node): string {
  return [rv.catalogname, rv.schemaname, rv.relname].filter((x) => typeof x === 'string').join('.');
}

function objectName(o: Node): string {
  const items = ((o.List as Node | undefined)?.items as Node[] | undefined) ?? [o];
  return items.map((i) => (i.String as { sval?: string } | undefined)?.sval ?? '?').join('.');
}

/**
 * INVARIANT: 'present' only for a WHERE that can pick rows by their own values: it names a column
 * outside any subquery, does not fold to true, and is not `col IN (SELECT col FROM the same table)`.
 */
function whereFact(where: Node | undefined, target: Node | undefined, filteredJoin: boolean): WhereFact {
  if (where === undefined) return 'none';
  const folded = fold(where);
  if (folded === true) return 'trivial';
  if (folded === false) return 'present'; // picks no row at all
  if (!namesColumn(where)) return 'trivial';
  if (selectsOwnTable(where, target)) return 'trivial';
  if (matchesEveryRow(where, !filteredJoin)) return 'trivial';
  return 'present';
}

/** True when an UPDATE … FROM / DELETE … USING joins a CTE or subquery, which can carry its own filter. */
function joinFiltered(body: Node): boolean {
  const ctes = new Set((((body.withClause as Node | undefined)?.ctes as Node[] | undefined) ?? []).map((c) => (c.CommonTableExpr as Node | undefined)?.ctename));
  const sources = ((body.usingClause ?? body.fromClause) as Node[] | undefined) ?? [];
  return sources.some((s) => 'RangeSubselect' in s || ctes.has((s.RangeVar as Node | undefined)?.relname));
}

/**
 * Conditions true for every row (or every joined row): `col IS NOT NULL`, `NOT col IS NULL`,
 * `col LIKE '%'`, a column compared with itself through casts or the same function, and a WHERE
 * made only of column-to-column equalities (a join, no filter).
 */
function matchesEveryRow(node: Node, joinsCount = true): boolean {
  const [name, v] = Object.entries(node)[0] ?? [];
  const body = v as Node;
  if (name === 'NullTest') return body.nulltesttype === 'IS_NOT_NULL' && 'ColumnRef' in (body.arg as Node);
  if (name === 'BoolExpr' && body.boolop === 'NOT_EXPR') {
    const inner = ((body.args as Node[]) ?? [])[0]?.NullTest as Node | undefined;
    return inner !== undefined && inner.nulltesttype === 'IS_NULL' && 'ColumnRef' in (inner.arg as Node);
  }
  if (name === 'BoolExpr' && body.boolop === 'AND_EXPR') return ((body.args as Node[]) ?? []).every((a) => fold(a) === true || (joinsCount && isColumnEquality(a)) || matchesEveryRow(a, joinsCount));
  if (name === 'BooleanTest' && (body.booltesttype === 'IS_TRUE' || body.booltesttype === 'IS_NOT_FALSE')) {
    const arg = body.arg as Node;
    return fold(arg) === true || matchesEveryRow(arg, joinsCount);
  }
  if (name === 'BoolExpr' && body.boolop === 'OR_EXPR') return ((body.args as Node[]) ?? []).some((a) => matchesEveryRow(a, joinsCount));
  if (name === 'A_Expr') {
    const op = ((body.name as Node[])?.[0]?.String as { sval?: string } | undefined)?.sval;
    if ((body.kind === 'AEXPR_LIKE' || body.kind === 'AEXPR_ILIKE') && (op === '~~' || op === '~~*')) {
      const pattern = fold(body.rexpr as Node);
      return typeof pattern === 'string' && /^%+$/.test(pattern);
    }
    const l = stripCasts(body.lexpr as Node), r = stripCasts(body.rexpr as Node);
    const same = l !== undefined && r !== undefined && namesColumn(l) && canonical(l) === canonical(r);
    if (same && (body.kind === 'AEXPR_NOT_DISTINCT' || (body.kind === 'AEXPR_OP' && ['=', '<=', '>='].includes(op ?? '')))) return true;
    return joinsCount && isColumnEquality(node);
  }
  return false;
}

function isColumnEquality(node: Node): boolean {
  const e = node.A_Expr as Node | undefined;
  if (e === undefined || e.kind !== 'AEXPR_OP') return false;
  const op = ((e.name as Node[])?.[0]?.String as { sval?: string } | undefined)?.sval;
  return op === '=' && 'ColumnRef' in (stripCasts(e.lexpr as Node) ?? {}) && 'ColumnRef' in (stripCasts(e.rexpr as Node) ?? {});
}

function stripCasts(node: Node | undefined): Node | undefined {
  let n = node;
  while (n !== undefined && 'TypeCast' in n) n = (n.TypeCast as Node).arg as Node;
  return n;
}

function canonical(node: Node): string {
  return JSON.stringify(node, (k, val) => (k === 'location' ? undefined : val));
}

/** True when the expression references a column outside any subquery. */
function namesColumn(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(namesColumn);
  if (node === null || typeof node !== 'object') return false;
  for (const [k, v] of Object.entries(node as Node)) {
    if (k === 'ColumnRef') return true;
    if (k === 'SubLink') {
      if (namesColumn((v as Node).testexpr)) return true;
      continue;
    }
    if (namesColumn(v)) return true;
  }
  return false;
}

/** `col IN (SELECT col FROM <target>)` with no WHERE, LIMIT or set operation: every row again. */
function selectsOwnTable(where: Node, target: Node | undefined): boolean {
  const link = where.SubLink as Node | undefined;
  if (link === undefined || link.subLinkType !== 'ANY_SUBLINK' || target === undefined) return false;
  const sel = (link.subselect as Node | undefined)?.SelectStmt as Node | undefined;
  if (sel === undefined || sel.whereClause !== undefined || sel.limitCount !== undefined || sel.op !== 'SETOP_NONE') return false;
  const from = (sel.fromClause as Node[] | undefined) ?? [];
  const rv = from.length === 1 ? (from[0]?.RangeVar as Node | undefined) : undefined;
  // a schema written on one side only still names the same table in the usual search path
  return rv !== undefined && rv.relname === target.relname && (rv.schemaname === undefined || target.schemaname === undefined || rv.schemaname === target.schemaname);
}

type Folded = boolean | number | string | null | undefined; // undefined: not a constant

/** Folds constant expressions: literals, casts, comparisons, AND/OR/NOT, and `col = col`. */
function fold(node: Node): Folded {
  const [name, v] = Object.entries(node)[0] ?? [];
  const body = v as Node;
  switch (name) {
    case 'A_Const': {
      if (body.isnull === true) return null;
      if ('boolval' in body) return (body.boolval as { boolval?: boolean }).boolval === true;
      if ('ival' in body) return Number((body.ival as { ival?: number }).ival ?? 0);
      if ('fval' in body) return Number((body.fval as { fval?: string }).fval);
      if ('sval' in body) return String((body.sval as { sval?: string }).sval ?? '');
      return undefined;
    }
    case 'TypeCast': {
      const inner = fold(body.arg as Node);
      const names = (((body.typeName as Node)?.names as Node[]) ?? []).map((n) => (n.String as { sval?: string })?.sval);
      if (names.includes('bool') && typeof inner === 'string') {
        const s = inner.toLowerCase();
        if (['t', 'true', 'yes', 'on', '1', 'y'].includes(s)) return true;
        if (['f', 'false', 'no', 'off', '0', 'n'].includes(s)) return false;
      }
      return inner;
    }
    case 'BoolExpr': {
      const args = ((body.args as Node[]) ?? []).map(fold);
      if (body.boolop === 'NOT_EXPR') return args[0] === true ? false : args[0] === false ? true : undefined;
      if (body.boolop === 'AND_EXPR') return args.every((a) => a === true) ? true : args.some((a) => a === false) ? false : undefined;
      if (body.boolop === 'OR_EXPR') return args.some((a) => a === true) ? true : args.every((a) => a === false) ? false : undefined;
      return undefined;
    }
    case 'NullTest': {
      const arg = fold(body.arg as Node);
      if (arg === undefined) return undefined;
      return body.nulltesttype === 'IS_NOT_NULL' ? arg !== null : arg === null;
    }
    case 'A_Expr': {
      if (body.kind === 'AEXPR_IN' || body.kind === 'AEXPR_BETWEEN' || body.kind === 'AEXPR_NOT_BETWEEN') {
        const l = fold(body.lexpr as Node);
        const items = (((body.rexpr as Node)?.List as Node | undefined)?.items as Node[] | undefined) ?? (Array.isArray(body.rexpr) ? (body.rexpr as Node[]) : []);
        const values = items.map(fold);
        if (l === undefined || l === null || values.some((v) => v === undefined || v === null)) return undefined;
        if (body.kind === 'AEXPR_IN') {
          const op = ((body.name as Node[])?.[0]?.String as { sval?: string } | undefined)?.sval;
          const hit = values.includes(l);
          return op === '<>' ? !hit : hit;
        }
        const [lo, hi] = values as (string | number | boolean)[];
        if (lo === undefined || hi === undefined) return undefined;
        const inside = l >= lo && l <= hi;
        return body.kind === 'AEXPR_BETWEEN' ? inside : !inside;
      }
      if (body.kind !== 'AEXPR_OP') return undefined;
      const op = ((body.name as Node[])?.[0]?.String as { sval?: string } | undefined)?.sval;
      const l = body.lexpr as Node, r = body.rexpr as Node;
      if (l === undefined || r === undefined) return undefined;
      if ('ColumnRef' in l && sameColumn(l, r) && ['=', '<=', '>='].includes(op ?? '')) return true;
      const a = fold(l), b = fold(r);
      if (a === undefined || b === undefined || a === null || b === null) return undefined;
      switch (op) {
        case '=': return a === b;
        case '<>': case '!=': return a !== b;
        case '<': return a < b;
        case '>': return a > b;
        case '<=': return a <= b;
        case '>=': return a >= b;
        default: return undefined;
      }
    }
    default: return undefined;
  }
}

function sameColumn(a: Node, b: Node): boolean {
  const strip = (n: Node) => JSON.stringify(n, (k, v) => (k === 'location' ? undefined : v));
  return 'ColumnRef' in b && strip(a) === strip(b);
}
