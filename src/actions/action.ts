/**
 * The normalized actions an agent asks to perform, and the parts the policy judges.
 *
 * An {@link Action} is what arrives from an enforcement point. Analysis turns it into
 * {@link Part}s: every simple shell command, SQL statement, HTTP request, MCP tool call and file
 * access it would perform, each with the facts a rule can match and an `origin` saying where in
 * the action it was found. The verdict of an action is the most restrictive verdict of its parts.
 */

/** The six action kinds (DESIGN.md, "Standard terms"). */
export const ACTION_KINDS = ['shell', 'sql', 'http', 'mcp_tool', 'file_read', 'file_write'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

export interface ShellAction {
  kind: 'shell';
  /** Full bash text; may hold newlines and heredocs. */
  command: string;
  /** Absolute directory the command runs in; relative paths resolve against it. */
  cwd?: string;
  env?: Record<string, string>;
}
export interface SqlAction {
  kind: 'sql';
  /** PostgreSQL text; may hold several statements and comments. */
  sql: string;
  dialect: 'postgres';
}
export interface HttpAction {
  kind: 'http';
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** Raw body; context only. */
  body?: string;
}
export interface McpToolAction {
  kind: 'mcp_tool';
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
  /** The tool's annotations from `tools/list` (`readOnlyHint`, `destructiveHint`, …): hints only. */
  annotations?: Record<string, unknown>;
  cwd?: string;
}
export interface FileReadAction {
  kind: 'file_read';
  /** May contain `~`, `.` or `..`; resolved before judging. */
  path: string;
  cwd?: string;
}
export interface FileWriteAction {
  kind: 'file_write';
  path: string;
  content?: string;
  cwd?: string;
}

export type Action = ShellAction | SqlAction | HttpAction | McpToolAction | FileReadAction | FileWriteAction;

/**
 * Where the agent runs: the workspace (`cwd`) and the home directory, both absolute.
 * Paths in actions and in policy globs (`~/…`, `./…`) resolve against these.
 */
export interface Context {
  cwd: string;
  home: string;
}

/**
 * A word of a command after quote removal. `value` is null when any piece of it comes from an
 * expansion Gatehouse cannot know (`$VAR`, `$(…)`, a glob it does not expand, input from a pipe).
 */
export type Word = string | null;

interface PartBase {
  /** Human-readable location in the action, e.g. "the 2nd command of the pipeline inside `$(…)`". */
  origin: string;
  /** Semantic tags set by the analysis (see {@link PART_TAGS}). */
  tags: PartTag[];
}

/**
 * Tags the analysis attaches; rules match them with `tags:`.
 * - `inline-code`: an interpreter runs code given inline (`python -c`, `node -e`, a `DO` block).
 * - `stdin-code`: a shell or interpreter runs a script of unknown content from its input.
 * - `dynamic-program`: the program name comes from an expansion (`$cmd`), so it is unknown.
 * - `script-file`: a shell or interpreter runs a script file.
 * - `env-dump`: prints the environment (`printenv`, bare `env`, `export -p`, `set`).
 * - `assignment-only`: a statement that only assigns variables (`X=1`).
 * - `lookup-only`: a command that only looks a program up (`command -v git`).
 * - `self-recursive`: a function that calls itself (the fork-bomb shape).
 * - `wrapper`: the command runs another command (`sudo`, `env`, `xargs`…), judged as its own part.
 * - `unknown-target`: a path or argument comes from input or an expansion Gatehouse cannot see (`xargs`, `cat $F`).
 * - `glob`: a file path holds an unexpanded pattern (`*.log`, the files `find -name … -exec` visits).
 * - `program-code`: SQL that runs an operating-system program (`COPY … TO PROGRAM`).
 */
export const PART_TAGS = [
  'inline-code',
  'stdin-code',
  'dynamic-program',
  'script-file',
  'env-dump',
  'assignment-only',
  'lookup-only',
  'self-recursive',
  'wrapper',
  'unknown-target',
  'glob',
  'program-code',
] as const;
export type PartTag = (typeof PART_TAGS)[number];

export interface ShellPart extends PartBase {
  kind: 'shell';
  /** Normalized program name (`/usr/bin/../bin/rm`, `"rm"`, `\rm` → `rm`); null when unknown or absent. */
  program: string | null;
  /** First positional argument of programs with subcommands (`git push` → `push`). */
  subcommand: string | null;
  /** Normalized flag names: `-rf`, `-r -f` and `--recursive --force` all give `recursive`, `force`. */
  flags: string[];
  /** Values of flags that took one, by normalized name (`--replicas=0` → `{replicas: "0"}`). */
  options: Record<string, Word>;
  /** Positional arguments after the subcommand. */
  args: Word[];
  /** `args` resolved as paths against the command's directory, with `~` and `$HOME` expanded. */
  paths: Word[];
  /** Names of variables assigned by or for this command (`X=1 cmd`, `export X=1`, `unset X`). */
  assigns: string[];
  /** Names of variables this command's own words expand (`echo $GITHUB_TOKEN` → `GITHUB_TOKEN`). */
  expands: string[];
  /** Resolved path of the script a shell or interpreter runs, or of a program named by a path outside the system's bin directories. */
  script: Word;
  /** Directory the command runs in; null after a `cd` to an unknown place. */
  cwd: string | null;
  /** The command's words, for display. */
  text: string;
}

export type WhereFact = 'none' | 'trivial' | 'present';

export interface SqlPart extends PartBase {
  kind: 'sql';
  /** Statement kind in snake case: `select`, `delete`, `drop_table`, `drop_database`, `alter_table`, `copy`, `do`… */
  statement: string;
  /** Target and referenced tables, schema-qualified when written so (`public.orders`), identifiers as PostgreSQL resolves them. */
  tables: string[];
  /**
   * For UPDATE/DELETE: no WHERE; a trivial one, which cannot pick rows (always true, such as `1=1` or
   * `x OR true`; naming no column, such as `'x' LIKE '%'`; or `id IN (SELECT id FROM same_table)`);
   * or a real one. Null for other statements.
   */
  where: WhereFact | null;
  /** True when this statement only reads. */
  readOnly: boolean;
  /** Names of functions the statement calls (lower case). */
  functions: string[];
  /** Configuration parameters a SET, RESET or ALTER SYSTEM changes (`pgaudit.log`, `log_statement`). */
  settings: string[];
  /** True for a statement inside another (a CTE, a subquery, what EXPLAIN ANALYZE runs): its rows are not in the outer statement's count. */
  nested: boolean;
  text: string;
}

export interface HttpPart extends PartBase {
  kind: 'http';
  /** Upper case; `?` when unknown. */
  method: string;
  /** Normalized absolute URL; null (with host and path) when it comes from an expansion or does not parse. */
  url: Word;
  scheme: string | null;
  /** Lower-case host name or IP literal, without brackets, port or trailing dot. */
  host: Word;
  port: number | null;
  /** Percent-decoded path. */
  path: Word;
}

export interface McpToolPart extends PartBase {
  kind: 'mcp_tool';
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
  annotations: Record<string, unknown>;
  /** True when Gatehouse turned the arguments into parts of their own (a command, SQL, a URL, paths). */
  interpreted: boolean;
}

export interface FilePart extends PartBase {
  kind: 'file_read' | 'file_write';
  /** Absolute, normalized path; null when it comes from an expansion. */
  path: Word;
}

export type Part = ShellPart | SqlPart | HttpPart | McpToolPart | FilePart;

/** Exhaustiveness guard for switches over unions (Cedar's style). */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(value)}`);
}
