import { z } from 'zod';
import { ACTION_KINDS, PART_TAGS } from '../actions/action.js';

/**
 * The policy file format, as a zod schema: the one source for validation and for the JSON Schema
 * that editors use (`gatehouse policy schema`).
 *
 * A rule names one or more action kinds and matchers over the facts of a part. Lists are any-of;
 * a quantified list (`{any|all|none: [...]}`) says how the part's list of values must match.
 * Globs are picomatch globs; path globs resolve `~/…` against home, `/…` as absolute, a leading
 * `**` as anywhere, and anything else against the workspace (the action's `cwd`).
 */

export const VERDICTS = ['allow', 'ask', 'deny'] as const;
export type Verdict = (typeof VERDICTS)[number];

const nonEmpty = z.string().min(1);
const globs = z.union([nonEmpty, z.array(nonEmpty).min(1)]).describe('a glob, or a list of globs of which any may match');
const quantified = z.union([
  globs,
  z.strictObject({
    any: globs.optional().describe('at least one value matches one of these'),
    all: globs.optional().describe('there is at least one value, every value is known, and each matches one of these'),
    none: globs.optional().describe('every value is known and none matches any of these'),
  }).refine((q) => q.any !== undefined || q.all !== undefined || q.none !== undefined, 'give at least one of any, all, none'),
]).describe('globs matched against a list of values: a plain list means any');

const kinds = z.union([z.enum(ACTION_KINDS), z.array(z.enum(ACTION_KINDS)).min(1)]);
const where = z.union([z.enum(['none', 'trivial', 'present']), z.array(z.enum(['none', 'trivial', 'present'])).min(1)]);
const tags = z.union([z.enum(PART_TAGS), z.array(z.enum(PART_TAGS)).min(1)]);

/** Matcher fields and the kinds each applies to. */
export const MATCHER_KINDS: Record<string, readonly string[]> = {
  program: ['shell'], subcommand: ['shell'], flags: ['shell'], options: ['shell'], args: ['shell'], paths: ['shell'], assigns: ['shell'], expands: ['shell'], script: ['shell'],
  statement: ['sql'], tables: ['sql'], where: ['sql'], readOnly: ['sql'], functions: ['sql'], settings: ['sql'],
  method: ['http'], host: ['http'], port: ['http'], urlPath: ['http'], scheme: ['http'],
  server: ['mcp_tool'], tool: ['mcp_tool'], interpreted: ['mcp_tool'], annotations: ['mcp_tool'],
  path: ['file_read', 'file_write'],
  tags: ACTION_KINDS,
};

const matcherShape = {
  program: globs.optional().describe('shell: the normalized program name'),
  subcommand: globs.optional().describe('shell: the subcommand (`git push` → push)'),
  flags: quantified.optional().describe('shell: normalized flag names (`-rf` → recursive, force)'),
  options: z.record(z.string(), globs).optional().describe('shell: option values by normalized name; each named option must be given with a value matching one of its globs'),
  args: quantified.optional().describe('shell: positional arguments after the subcommand'),
  paths: quantified.optional().describe('shell: positional arguments resolved as paths (path globs)'),
  assigns: globs.optional().describe('shell: names of variables the command assigns or unsets'),
  expands: globs.optional().describe('shell: names of variables the command\'s own words expand'),
  script: globs.optional().describe('shell: the script file a shell or interpreter runs (path globs)'),
  statement: globs.optional().describe('sql: statement kind (select, delete, drop_table, drop_database, …)'),
  tables: quantified.optional().describe('sql: tables, schema-qualified when written so'),
  where: where.optional().describe('sql: UPDATE/DELETE WHERE clause: none, trivial (always true) or present'),
  readOnly: z.boolean().optional().describe('sql: the statement only reads'),
  functions: quantified.optional().describe('sql: functions the statement calls'),
  settings: quantified.optional().describe('sql: configuration parameters a SET, RESET or ALTER SYSTEM changes'),
  method: globs.optional().describe('http: method, upper case'),
  host: globs.optional().describe('http: host name or IP, lower case'),
  port: z.union([z.number().int(), z.array(z.number().int()).min(1)]).optional().describe('http: explicit port, any of'),
  urlPath: globs.optional().describe('http: URL path'),
  scheme: globs.optional().describe('http: URL scheme'),
  server: globs.optional().describe('mcp_tool: server name'),
  tool: globs.optional().describe('mcp_tool: tool name'),
  interpreted: z.boolean().optional().describe('mcp_tool: the arguments became parts of their own (a command, SQL, a URL, paths)'),
  annotations: z.record(z.string(), z.union([z.boolean(), z.string(), z.number()])).optional().describe('mcp_tool: annotation values that must all be equal'),
  path: globs.optional().describe('file_read/file_write: the resolved path (path globs)'),
  tags: tags.optional().describe('analysis tags, any of'),
};

export const matcherSchema = z.strictObject(matcherShape);
export type MatcherSpec = z.infer<typeof matcherSchema>;

export const ruleSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower case letters, digits, `.`, `_` and `-`, starting with a letter or digit').describe('unique rule id'),
  verdict: z.enum(VERDICTS),
  kind: kinds.describe('the action kind(s) the rule judges'),
  reason: z.string().optional().describe('why, shown to the agent and the reviewer'),
  ...matcherShape,
  unless: z.union([matcherSchema, z.array(matcherSchema).min(1)]).optional().describe('the rule does not apply when every matcher here matches (a list: when any of its entries does)'),
  when: z.string().min(1).optional().describe('a CEL condition over `part` and `context`; it must be true for the rule to apply'),
  reviewers: z.number().int().min(1).max(5).optional().describe('ask rules: how many distinct reviewers must approve (default 1)'),
}).refine((r) => r.reviewers === undefined || r.verdict === 'ask', { message: '`reviewers` applies to ask rules only', path: ['reviewers'] });
export type RuleSpec = z.infer<typeof ruleSchema>;

const IDENT = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, `.`, `_` and `-`, at most 64');
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
/** Money in the currency's units, at most two decimals (caps are kept in cents). */
const MONEY = z.number().min(0).max(1e12).refine((n) => Number.isInteger(Math.round(n * 100)) && Math.abs(n * 100 - Math.round(n * 100)) < 1e-6, 'at most two decimals');

const credentialSchema = z.strictObject({
  secret: IDENT.optional().describe('the name in the secret store (`gatehouse secret add NAME`); default: the credential\'s name'),
  agents: z.array(z.union([IDENT, z.literal('*')])).min(1).describe('the agents lent this credential (a phantom token each session); `*`: every agent'),
  upstream: z.string().url().refine((u) => /^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(u), 'an http(s) URL without query or fragment').describe('where the gateway\'s /proxy/{credential}/… forwards, e.g. https://api.github.com'),
  env: z.string().regex(/^[A-Z_][A-Z0-9_]{0,63}$/, 'an environment variable name').optional().describe('the variable `gatehouse run` sets to the phantom token, e.g. GITHUB_TOKEN'),
  inject: z.strictObject({
    header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/).default('authorization').describe('the header that carries the credential'),
    format: z.string().includes('{secret}').default('Bearer {secret}').describe('the header\'s value, with {secret} where the credential goes'),
    query: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional().describe('carry it in this query parameter instead of a header'),
  }).default({ header: 'authorization', format: 'Bearer {secret}' }).describe('how the real credential is put into a forwarded request'),
  scope: z.array(z.strictObject({
    hosts: z.array(z.string().min(1).max(253)).min(1).optional().describe('host globs; default: the upstream\'s host'),
    methods: z.array(z.enum(METHODS)).min(1).default([...METHODS]).describe('HTTP methods'),
    paths: z.array(z.string().min(1).startsWith('/')).min(1).default(['/**']).describe('URL path globs (`*` within a segment, `**` across)'),
  })).min(1).describe('what the credential may be used for: a request must fit one entry'),
  spend: z.strictObject({
    field: z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/, 'a dotted path into the JSON body, e.g. order.total').describe('the request body\'s amount'),
    perSession: MONEY.optional().describe('the most one session may spend'),
    perHour: MONEY.optional().describe('the most all sessions together may spend in any 60 minutes'),
    askAbove: MONEY.optional().describe('a single request above this amount needs a reviewer\'s approval'),
  }).optional().describe('spend caps: a request that would pass a cap is denied'),
});
export type CredentialSpec = z.infer<typeof credentialSchema>;

const HTTP_STATUS = z.union([z.number().int().min(100).max(599), z.enum(['1xx', '2xx', '3xx', '4xx', '5xx'])]);
const errorClassSchema = z.strictObject({
  id: IDENT.describe('the class\'s name, recorded with each outcome it matches'),
  action: z.enum(['stop', 'recover']).describe('stop halts the session; recover lets the agent retry within the budget'),
  description: z.string().optional(),
  match: z.strictObject({
    exitCodes: z.array(z.number().int().min(0).max(255)).min(1).optional().describe('shell exit codes'),
    sqlstate: z.array(z.string().regex(/^[0-9A-Z]{2}([0-9A-Z]{3})?$/, 'a SQLSTATE (5 characters) or its class (2)')).min(1).optional().describe('SQLSTATE codes or classes (PostgreSQL docs, Appendix A)'),
    httpStatus: z.array(HTTP_STATUS).min(1).optional().describe('HTTP status codes, or 4xx / 5xx'),
    text: z.array(z.string().min(1)).min(1).optional().describe('regular expressions (case-insensitive) on the error text: stderr, the MCP tool\'s error, Claude Code\'s `error`'),
  }).refine((m) => Object.values(m).some((v) => v !== undefined), 'give at least one of exitCodes, sqlstate, httpStatus, text').describe('an outcome matches when any of these matches'),
  retry: z.strictObject({
    budget: z.number().int().min(0).max(100).default(3).describe('failures of the same action allowed before it is a stop'),
    backoffSeconds: z.number().min(0).max(3600).default(1).describe('the wait before the same action may run again, doubled after each failure'),
  }).optional().describe('recover classes: the retry budget and backoff (default 3 tries, 1 s)'),
  approval: z.literal('required').optional().describe('recover classes: retrying the action needs a reviewer\'s approval'),
});
export type ErrorClassSpec = z.infer<typeof errorClassSchema>;

export const policySchema = z.strictObject({
  version: z.literal(1).describe('the format version: 1'),
  description: z.string().optional(),
  default: z.enum(['deny', 'ask']).default('deny').describe('verdict for a part no rule matches'),
  agents: z.record(
    z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, `.`, `_` and `-`, at most 64'),
    z.strictObject({ environment: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower case letters, digits, `_` and `-`').describe('the environment every session of this agent runs in') }),
  ).optional().describe('the agents that may open sessions, each with its environment; when absent, any agent registered with `gatehouse agent add`, in its registered environment'),
  sessions: z.strictObject({
    maxTtlMinutes: z.number().int().min(1).max(1440).default(30).describe('the longest session an agent may open, in minutes'),
  }).default({ maxTtlMinutes: 30 }).describe('session limits'),
  approvals: z.strictObject({
    expiresMinutes: z.number().int().min(1).max(1440).default(10).describe('minutes a reviewer has to answer; expiry counts as rejection'),
  }).default({ expiresMinutes: 10 }).describe('approval limits'),
  limits: z.strictObject({
    maxRowsPerStatement: z.number().int().min(0).default(1000).describe('rows one SQL statement may touch (counted by the database in sql_query) before it needs an approval'),
    maxRowsPerSession: z.number().int().min(0).default(10000).describe('rows a session\'s statements may touch in all before the next needs an approval'),
    actionsPerMinute: z.strictObject({
      session: z.number().int().min(1).default(120).describe('actions one session may send in any 60 s'),
      agent: z.number().int().min(1).default(600).describe('actions all of an agent\'s sessions may send in any 60 s'),
    }).default({ session: 120, agent: 600 }),
    resourcesPerSession: z.number().int().min(0).default(20).describe('actions that create resources (kubectl create/apply/run, cloud create-* and run-instances, terraform apply, docker run, SQL CREATE, create_* tools) one session may take'),
    onLimit: z.enum(['ask', 'deny']).default('deny').describe('the verdict when an action would pass actionsPerMinute or resourcesPerSession'),
    breaker: z.strictObject({
      windowSeconds: z.number().int().min(1).max(86400).default(300),
      minFailures: z.number().int().min(1).default(10).describe('failed outcomes in the window before the rate counts'),
      maxFailureRate: z.number().min(0).max(1).default(0.5).describe('failed / all outcomes in the window above which the session is halted'),
    }).default({ windowSeconds: 300, minFailures: 10, maxFailureRate: 0.5 }).describe('the circuit breaker: a session failing too often is halted'),
    scaling: z.strictObject({
      maxStepFactor: z.number().min(1).default(2).describe('a scale to this many times the last value set, or more, asks'),
      escalations: z.number().int().min(2).default(3).describe('this many increases in a row of one target within the window halt the session (a feedback loop)'),
      windowSeconds: z.number().int().min(1).default(900),
    }).default({ maxStepFactor: 2, escalations: 3, windowSeconds: 900 }).describe('feedback loops: replicas, desired counts, node counts set again and again'),
  }).default({
    maxRowsPerStatement: 1000, maxRowsPerSession: 10000, actionsPerMinute: { session: 120, agent: 600 }, resourcesPerSession: 20, onLimit: 'deny',
    breaker: { windowSeconds: 300, minFailures: 10, maxFailureRate: 0.5 }, scaling: { maxStepFactor: 2, escalations: 3, windowSeconds: 900 },
  }).describe('blast-radius limits, enforced where Gatehouse sees or runs the action'),
  errors: z.array(errorClassSchema).optional().describe('the error taxonomy: outcomes that match no class are stop; absent, the built-in default policy\'s classes apply'),
  credentials: z.record(IDENT, credentialSchema).optional().describe('real credentials lent to agents as phantom tokens, used only through the gateway\'s credential proxy'),
  rules: z.array(ruleSchema).describe('order never changes the verdict: deny wins, then ask, then allow'),
});
export type PolicySpec = z.infer<typeof policySchema>;

/** The JSON Schema (draft 2020-12) of the policy file, for editors. */
export function policyJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://gatehouse.dev/schema/policy-v1.json',
    title: 'Gatehouse policy',
    ...(z.toJSONSchema(policySchema, { io: 'input' }) as Record<string, unknown>),
  };
}
