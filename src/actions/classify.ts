import type { Action, Context, McpToolAction, Part } from './action.js';
import { assertNever } from './action.js';
import { httpPart } from './http/analyze.js';
import { credentialNamesMatching, plainOrDeep } from './files.js';
import { resolveActionPath, resolvePath } from './paths.js';
import { analyzeShell } from './shell/analyze.js';
import { loadShellParser } from './shell/parser.js';
import { shellQuote } from './text.js';
import { analyzeSql, loadSqlParser } from './sql/analyze.js';

/**
 * Classification, the pipeline step between the session and the decision: one action in, every
 * part the policy must judge out. Failure to understand any piece fails the whole action.
 */

/** Longest text (shell, SQL, URL, path) analyzed; longer is denied. Bytes of UTF-16 code units. */
export const MAX_TEXT = 256 * 1024;

/** Loads the bash and SQL parsers (WASM) once; call before {@link analyzeAction} or `decide`. */
export async function loadParsers(): Promise<void> {
  await Promise.all([loadShellParser(), loadSqlParser()]);
}

export type Analysis = { ok: true; parts: Part[] } | { ok: false; reason: string };

/**
 * @param action a validated action.
 * @param ctx    workspace and home; an action's own `cwd` takes precedence over `ctx.cwd`.
 * @returns the parts, or `{ok: false, reason}` (bad text, a parse failure, nesting past the limit).
 * @throws never.
 */
export function analyzeAction(action: Action, ctx: Context): Analysis {
  try {
    switch (action.kind) {
      case 'shell': {
        const bad = badText(action.command, 'the command');
        if (bad) return bad;
        if (action.command.trim() === '') return { ok: false, reason: 'the command is empty' };
        // INVARIANT: variables the action sets in `env` are judged as if the command exported them first
        const env = Object.entries(action.env ?? {});
        const badName = env.find(([k]) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
        if (badName) return { ok: false, reason: `\`env\` names a variable that is not a shell name: ${JSON.stringify(badName[0].slice(0, 60))}` };
        const exports = env.map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
        return analyzeShell(exports + action.command, { ...ctx, cwd: action.cwd ?? ctx.cwd });
      }
      case 'sql': {
        const bad = badText(action.sql, 'the SQL');
        if (bad) return bad;
        if (action.sql.trim() === '') return { ok: false, reason: 'the SQL is empty' };
        const result = analyzeSql(action.sql, 'the SQL');
        if (!result.ok) return result;
        return { ok: true, parts: [...result.parts, ...result.files] };
      }
      case 'http': {
        const bad = badText(action.url, 'the URL') ?? badText(action.method, 'the method');
        if (bad) return bad;
        const part = httpPart(action.method, action.url, 'the request');
        if (part.host === null) return { ok: false, reason: `the URL \`${action.url.slice(0, 200)}\` does not parse as an absolute URL` };
        return { ok: true, parts: [part] };
      }
      case 'mcp_tool':
        return mcpParts(action, ctx);
      case 'file_read':
      case 'file_write': {
        const bad = badText(action.path, 'the path');
        if (bad) return bad;
        const path = resolveActionPath(action.path, action.cwd, ctx);
        if (path === null) return { ok: false, reason: `the path \`${action.path}\` cannot be resolved` };
        if (!/[*?[]/.test(path)) return { ok: true, parts: [{ kind: action.kind, path, origin: 'the path', tags: [] }] };
        // a pattern: judged as itself and as every credential file its last segment can name
        const slash = path.lastIndexOf('/');
        const candidates = plainOrDeep(path.slice(0, slash)) ? credentialNamesMatching(path.slice(slash + 1)) : [];
        return { ok: true, parts: [{ kind: action.kind, path, origin: 'the path', tags: ['glob'] }, ...candidates.map((n) => ({ kind: action.kind, path: `${path.slice(0, slash)}/${n}`, origin: 'a file the pattern can name', tags: ['glob' as const] }))] };
      }
      default:
        return assertNever(action, 'action kind');
    }
  } catch (err) {
    return { ok: false, reason: `the analysis failed: ${(err as Error).message ?? String(err)}` };
  }
}

/** Text Gatehouse refuses to judge: too long, NUL and other control bytes, invalid Unicode. */
function badText(text: string, what: string): { ok: false; reason: string } | null {
  if (text.length > MAX_TEXT) return { ok: false, reason: `${what} is ${text.length} characters long; the limit is ${MAX_TEXT}` };
  // eslint-disable-next-line no-control-regex
  const control = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.exec(text);
  if (control) return { ok: false, reason: `${what} holds the control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} at offset ${control.index}` };
  if (!(text as string & { isWellFormed(): boolean }).isWellFormed() || text.includes('\uFFFD')) return { ok: false, reason: `${what} is not valid UTF-8 / Unicode text` };
  return null;
}

const COMMAND_KEYS = new Set(['command', 'cmd', 'script', 'shell_command', 'commandline', 'command_line', 'bash']);
const ARGV_KEYS = ['args', 'argv', 'arguments'];
const CWD_KEYS = ['cwd', 'working_directory', 'workdir', 'working_dir'];
const SQL_KEYS = new Set(['sql', 'query', 'statement', 'sql_query', 'query_string', 'sqlquery']);
/** Arguments that never carry an action: they do not count against reading a call fully. */
const BENIGN_KEYS = new Set(['timeout', 'description', 'reason', 'comment', 'message', 'title', 'limit', 'offset', 'page', 'per_page', 'format',
  'encoding', 'recursive', 'max_results', 'maxresults', 'max_depth', 'depth', 'lines', 'head', 'tail', 'verbose', 'dry_run', 'owner', 'repo',
  'branch', 'ref', 'name', 'content', 'pattern', 'include', 'exclude', 'excludepatterns', 'mode', 'language', 'lang', 'edits', 'dryrun',
  'oldtext', 'newtext', 'old_string', 'new_string', 'old_str', 'new_str', 'text', 'insert_line', 'view_range', 'replace_all', 'line']);
const URL_KEYS = new Set(['url', 'uri', 'href', 'endpoint']);
const PATH_KEYS = new Set(['path', 'file_path', 'filepath', 'filename', 'file', 'source', 'destination', 'target', 'dir', 'directory', 'repo_path', 'notebook_path', 'root', 'cwd']);
const PATHS_KEYS = new Set(['paths', 'files']);
const WRITE_VERBS = /(write|create|edit|update|delete|remove|move|rename|append|patch|put|set|upload|save|mkdir|insert|replace|modify|chmod|touch|copy)/i;
const SQL_TOOLS = /(sql|postgres|pg|mysql|maria|sqlite|database|db|query)/i;

/**
 * An MCP tool call is a part of its own, plus parts for the arguments Gatehouse can read:
 * a command (`command`, `cmd`…) is shell, SQL (`sql`, or `query` on a database tool) is SQL,
 * a URL is an HTTP request, and paths are file reads or writes (writes when the tool's name says so).
 */
function mcpParts(action: McpToolAction, ctx: Context): Analysis {
  const args = action.arguments;
  const origin = (key: string) => `the \`${key}\` argument of the MCP tool \`${action.server}.${action.tool}\``;
  // INVARIANT: one key per alias group (keys compared case-insensitively): which of two a server reads is unknown
  const keysOf = (group: readonly string[]) => Object.keys(args).filter((k) => group.includes(k.toLowerCase()));
  for (const group of [CWD_KEYS, ARGV_KEYS]) {
    const present = keysOf(group);
    if (present.length > 1) return { ok: false, reason: `the MCP tool \`${action.server}.${action.tool}\` was given both ${present.map((k) => `\`${k}\``).join(' and ')}: which one the server uses cannot be known` };
  }
  const cwdKey = keysOf(CWD_KEYS)[0];
  const argvKey = keysOf(ARGV_KEYS)[0];
  const cwdArg = cwdKey === undefined ? undefined : args[cwdKey];
  const cwd = typeof cwdArg === 'string' ? resolvePath(cwdArg, action.cwd ?? ctx.cwd, ctx.home) ?? ctx.cwd : action.cwd ?? ctx.cwd;
  // a command given as a program plus an argument list runs as that argv: judge it as one command line
  const argvArg = argvKey === undefined ? undefined : args[argvKey];
  const argv = Array.isArray(argvArg) && argvArg.every((x) => typeof x === 'string') ? (argvArg as string[]) : undefined;
  // a file-system server resolves a relative path against its own allowed directory, which Gatehouse does not know: unknown
  const localFiles = /^(filesystem|fs|files)$/i.test(action.server);
  const pathOf = (value: string) => (localFiles && cwdKey === undefined && !/^[/~]/.test(value) ? null : resolvePath(value, cwd, ctx.home));
  const derived: Part[] = [];
  const write = WRITE_VERBS.test(action.tool);
  let unread = false;
  for (const [key, value] of Object.entries(args)) {
    const k = key.toLowerCase();
    const before = derived.length;
    // INVARIANT: a value counts as read only when it was read as what its key says (a command string, the argv list, the cwd string)
    const consumed = () => derived.length > before || (COMMAND_KEYS.has(k) && typeof value === 'string') || (key === cwdKey && typeof value === 'string') || (key === argvKey && argv !== undefined) || BENIGN_KEYS.has(k);
    if (typeof value === 'string') {
      const bad = badText(value, origin(key));
      if (bad && (COMMAND_KEYS.has(k) || SQL_KEYS.has(k) || URL_KEYS.has(k) || PATH_KEYS.has(k))) return bad;
      if (COMMAND_KEYS.has(k)) {
        const line = argv !== undefined ? [value, ...argv.map(shellQuote)].join(' ') : value;
        const r = analyzeShell(line, { ...ctx, cwd });
        if (!r.ok) return { ok: false, reason: `${origin(key)}: ${r.reason}` };
        derived.push(...r.parts.map((p) => ({ ...p, origin: `${p.origin}, in ${origin(key)}` })));
      } else if (SQL_KEYS.has(k) && (k === 'sql' || SQL_TOOLS.test(`${action.server} ${action.tool}`))) {
        const r = analyzeSql(value, origin(key));
        if (!r.ok) return { ok: false, reason: `${origin(key)}: ${r.reason}` };
        derived.push(...r.parts, ...r.files);
      } else if (URL_KEYS.has(k)) {
        const method = typeof args.method === 'string' ? args.method : 'GET';
        derived.push(httpPart(method, value, origin(key)));
      } else if (PATH_KEYS.has(k) && !CWD_KEYS.includes(k)) {
        const readOnlySource = k === 'source' && /copy/i.test(action.tool);
        derived.push({ kind: write && !readOnlySource ? 'file_write' : 'file_read', path: pathOf(value), origin: origin(key), tags: [] });
      }
    } else if (PATHS_KEYS.has(k) && Array.isArray(value)) {
      for (const v of value) derived.push({ kind: write ? 'file_write' : 'file_read', path: typeof v === 'string' ? pathOf(v) : null, origin: origin(key), tags: [] });
    }
    if (!consumed() && (typeof value === 'string' ? value.length > 0 : value !== null && typeof value === 'object')) unread = true;
  }
  const tool: Part = {
    kind: 'mcp_tool', server: action.server, tool: action.tool, arguments: args, annotations: action.annotations ?? {},
    // INVARIANT: interpreted only when every argument that could carry an action was read
    interpreted: derived.length > 0 && !unread, origin: 'the tool call', tags: [],
  };
  return { ok: true, parts: [tool, ...derived] };
}
