import type * as Cel from '@bufbuild/cel';
import { createRequire } from 'node:module';
import picomatch from 'picomatch';
import type { Context, Part, Word } from '../actions/action.js';
import { compileErrors, type CompiledErrorClass } from '../errors/taxonomy.js';
import { MATCHER_KINDS, type CredentialSpec, type MatcherSpec, type PolicySpec, type RuleSpec, type Verdict } from './schema.js';

/**
 * Compiles a validated policy into matchers: exact names into sets, globs into picomatch
 * functions, path globs per workspace and home (cached), CEL conditions into plans.
 *
 * INVARIANT: a matcher is true only when the part's facts prove it. An unknown value (a path or
 * argument from an expansion) matches no glob, a quantified `all`/`none` over a list holding an
 * unknown value is false, and a CEL condition that errors counts against allowing: an allow rule
 * does not apply, an ask or deny rule does.
 */

export type PartKind = Part['kind'];

/** Outcome of testing a rule on a part: no match, a match, or a match because a condition failed. */
export type RuleTest = false | true | { conditionError: string };

export interface CompiledRule {
  id: string;
  verdict: Verdict;
  reason: string | undefined;
  /** Distinct reviewers an ask of this rule needs. */
  reviewers: number;
  kinds: readonly PartKind[];
  file: string;
  line: number;
  test(part: Part, ctx: Context): RuleTest;
}

export interface CompiledPolicy {
  file: string;
  default: Verdict;
  description: string | undefined;
  rules: CompiledRule[];
  /** Agents the policy names, with their environment; null when it names none (any registered agent). */
  agents: ReadonlyMap<string, { environment: string }> | null;
  /** Longest session, in seconds. */
  maxSessionSeconds: number;
  /** How long an approval waits for reviewers, in seconds. */
  approvalSeconds: number;
  /** Blast-radius limits: rows, rates, resources, the breaker, feedback loops. */
  limits: PolicySpec['limits'];
  /** The error taxonomy (the built-in default's classes when the policy has no `errors:`). */
  errors: CompiledErrorClass[];
  /** Credentials lent as phantom tokens, by name. */
  credentials: ReadonlyMap<string, CompiledCredential>;
  /** Rules by the part kind they judge. */
  byKind: Map<PartKind, CompiledRule[]>;
  /** Shell rules by exact program name (each list also holds the rules that name no exact program). */
  byProgram: Map<string, CompiledRule[]>;
}

/** A credential of the policy, ready for the credential proxy. */
export interface CompiledCredential {
  name: string;
  /** Its name in the secret store. */
  secret: string;
  /** Whether an agent is lent it. */
  lentTo(agent: string): boolean;
  /** The upstream's origin and base path, e.g. `https://api.github.com` (no trailing `/`). */
  upstream: string;
  env: string | undefined;
  inject: { header: string; format: string; query?: string | undefined };
  /** Whether a request fits the scope: `host` lower case, `method` upper case, `path` the URL path. */
  inScope(host: string, method: string, path: string): boolean;
  /** Hosts the credential may reach (globs), for the forward proxy. */
  hosts: string[];
  /** Spend caps in cents; null fields are not capped. */
  spend: { field: string; perSession: number | null; perHour: number | null; askAbove: number | null } | null;
}

export type CompileResult = { ok: true; policy: CompiledPolicy } | { ok: false; issues: { path: (string | number)[]; message: string }[] };

type Test = (part: Part, ctx: Context) => boolean;
type StringTest = (value: string, ctx: Context) => boolean;

const MATCHER_FIELDS = Object.keys(MATCHER_KINDS) as (keyof MatcherSpec)[];

/** CEL loads only for a policy that has a `when:` (it costs ~60 ms at start-up). */
let celModule: { lib: typeof Cel; env: ReturnType<typeof Cel.celEnv> } | null = null;
function cel(): { lib: typeof Cel; env: ReturnType<typeof Cel.celEnv> } {
  if (celModule === null) {
    const lib = createRequire(import.meta.url)('@bufbuild/cel') as typeof Cel;
    celModule = { lib, env: lib.celEnv() };
  }
  return celModule;
}

/**
 * @param spec      a policy that passed {@link policySchema}.
 * @param file      its name, carried into every decision for explanations.
 * @param ruleLines the 1-based line of each rule, in order.
 */
export function compilePolicy(spec: PolicySpec, file: string, ruleLines: number[]): CompileResult {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const rules: CompiledRule[] = [];
  const seen = new Map<string, number>();
  spec.rules.forEach((rule, i) => {
    const kinds = (Array.isArray(rule.kind) ? rule.kind : [rule.kind]) as PartKind[];
    if (seen.has(rule.id)) issues.push({ path: ['rules', i, 'id'], message: `duplicate rule id \`${rule.id}\` (first at rules[${seen.get(rule.id)}])` });
    seen.set(rule.id, i);
    const unlessList = rule.unless === undefined ? [] : Array.isArray(rule.unless) ? rule.unless : [rule.unless];
    const checked: [(string | number)[], MatcherSpec][] = [[[], rule], ...unlessList.map((u, j): [(string | number)[], MatcherSpec] => [Array.isArray(rule.unless) ? ['unless', j] : ['unless'], u])];
    for (const [where, m] of checked) {
      for (const field of MATCHER_FIELDS) {
        if (m[field] === undefined) continue;
        const fits = MATCHER_KINDS[field] as readonly string[];
        const bad = kinds.filter((k) => !fits.includes(k));
        if (bad.length > 0) issues.push({ path: ['rules', i, ...where, field], message: `\`${field}\` applies to ${fits.join(', ')}, not ${bad.join(', ')}` });
      }
    }
    let condition: ((part: Part, ctx: Context) => boolean | string) | null = null;
    if (rule.when !== undefined) {
      try {
        condition = compileCondition(rule.when);
      } catch (err) {
        issues.push({ path: ['rules', i, 'when'], message: `CEL: ${(err as Error).message}` });
      }
    }
    const match = compileMatcher(rule);
    const exemptions = unlessList.map(compileMatcher);
    const unless = exemptions.length === 0 ? null : (part: Part, ctx: Context) => exemptions.some((e) => e(part, ctx));
    const allow = rule.verdict === 'allow';
    rules.push({
      id: rule.id,
      verdict: rule.verdict,
      reason: rule.reason,
      reviewers: rule.reviewers ?? 1,
      kinds,
      file,
      line: ruleLines[i] ?? 0,
      test(part, ctx) {
        if (!kinds.includes(part.kind) || !match(part, ctx)) return false;
        if (unless !== null && unless(part, ctx)) return false;
        if (condition === null) return true;
        const result = condition(part, ctx);
        if (result === true) return true;
        if (result === false) return false;
        return allow ? false : { conditionError: result };
      },
    });
  });
  const errors = compileErrors(spec.errors ?? [], issues);
  if (issues.length > 0) return { ok: false, issues };
  const byKind = new Map<PartKind, CompiledRule[]>();
  for (const rule of rules) for (const k of rule.kinds) byKind.set(k, [...(byKind.get(k) ?? []), rule]);
  // INVARIANT: byProgram.get(p) holds every shell rule that can match a part whose program is p, in order
  const exactPrograms = (r: RuleSpec): string[] | null => {
    const g = r.program === undefined ? null : Array.isArray(r.program) ? r.program : [r.program];
    return g !== null && g.every((p) => !GLOB_CHARS.test(p)) ? g : null;
  };
  const shellRules = byKind.get('shell') ?? [];
  const anyProgram = shellRules.filter((_, i) => exactPrograms(spec.rules[rules.indexOf(shellRules[i] as CompiledRule)] as RuleSpec) === null);
  const byProgram = new Map<string, CompiledRule[]>();
  for (const rule of shellRules) {
    for (const p of exactPrograms(spec.rules[rules.indexOf(rule)] as RuleSpec) ?? []) byProgram.set(p, [...(byProgram.get(p) ?? []), rule]);
  }
  for (const [p, list] of byProgram) byProgram.set(p, shellRules.filter((r) => list.includes(r) || anyProgram.includes(r)));
  byProgram.set('', anyProgram);
  const agents = spec.agents === undefined ? null : new Map(Object.entries(spec.agents));
  const credentials = new Map(Object.entries(spec.credentials ?? {}).map(([name, c]) => [name, compileCredential(name, c)]));
  const policy = { file, default: spec.default, description: spec.description, rules, byKind, byProgram, agents, maxSessionSeconds: spec.sessions.maxTtlMinutes * 60, approvalSeconds: spec.approvals.expiresMinutes * 60, limits: spec.limits, credentials, errors };
  return { ok: true, policy };
}

function compileCredential(name: string, c: CredentialSpec): CompiledCredential {
  const upstream = c.upstream.replace(/\/+$/, '');
  const upstreamHost = new URL(upstream).hostname.toLowerCase();
  const entries = c.scope.map((e) => ({
    hosts: picomatch((e.hosts ?? [upstreamHost]).map((h) => h.toLowerCase()), { nocase: true }),
    methods: new Set<string>(e.methods),
    paths: picomatch(e.paths, { dot: true }),
  }));
  const agents = new Set(c.agents);
  const cents = (n: number | undefined) => (n === undefined ? null : Math.round(n * 100));
  return {
    name,
    secret: c.secret ?? name,
    lentTo: (agent) => agents.has('*') || agents.has(agent),
    upstream,
    env: c.env,
    inject: c.inject,
    inScope: (host, method, path) => entries.some((e) => e.methods.has(method) && e.hosts(host) && e.paths(path)),
    hosts: [...new Set(c.scope.flatMap((e) => e.hosts ?? [upstreamHost]))],
    spend: c.spend === undefined ? null : { field: c.spend.field, perSession: cents(c.spend.perSession), perHour: cents(c.spend.perHour), askAbove: cents(c.spend.askAbove) },
  };
}

function compileMatcher(m: MatcherSpec | RuleSpec): Test {
  const tests: Test[] = [];
  const scalar = (get: (p: Part) => Word | undefined, g: string | string[] | undefined, path = false, fold?: (s: string) => string, flat = false) => {
    if (g === undefined) return;
    const t = path ? pathGlobs(g) : flat ? flatGlobs(g) : stringGlobs(g, fold);
    tests.push((p, ctx) => {
      const v = get(p);
      return typeof v === 'string' && t(v, ctx);
    });
  };
  const list = (get: (p: Part) => readonly Word[] | undefined, q: MatcherSpec['flags'], path = false, flat = false) => {
    if (q === undefined) return;
    const spec = typeof q === 'string' || Array.isArray(q) ? { any: q } : q;
    const make = (g: string | string[]) => (path ? pathGlobs(g) : flat ? flatGlobs(g) : stringGlobs(g));
    const any = spec.any !== undefined ? make(spec.any) : null;
    const all = spec.all !== undefined ? make(spec.all) : null;
    const none = spec.none !== undefined ? make(spec.none) : null;
    tests.push((p, ctx) => {
      const values = get(p);
      if (values === undefined) return false;
      if (any && !values.some((v) => v !== null && any(v, ctx))) return false;
      if (all && (values.length === 0 || !values.every((v) => v !== null && all(v, ctx)))) return false;
      if (none && !values.every((v) => v !== null && !none(v, ctx))) return false;
      return true;
    });
  };
  const shell = <K extends keyof Extract<Part, { kind: 'shell' }>>(k: K) => (p: Part) => (p.kind === 'shell' ? p[k] : undefined);
  const sql = <K extends keyof Extract<Part, { kind: 'sql' }>>(k: K) => (p: Part) => (p.kind === 'sql' ? p[k] : undefined);
  const http = <K extends keyof Extract<Part, { kind: 'http' }>>(k: K) => (p: Part) => (p.kind === 'http' ? p[k] : undefined);
  const mcp = <K extends keyof Extract<Part, { kind: 'mcp_tool' }>>(k: K) => (p: Part) => (p.kind === 'mcp_tool' ? p[k] : undefined);

  scalar(shell('program') as (p: Part) => Word | undefined, m.program);
  scalar(shell('subcommand') as (p: Part) => Word | undefined, m.subcommand);
  list(shell('flags'), m.flags);
  if (m.options !== undefined) {
    const wanted = Object.entries(m.options).map(([name, g]) => [name, flatGlobs(g)] as const);
    tests.push((p, ctx) => p.kind === 'shell' && wanted.every(([name, test]) => typeof p.options[name] === 'string' && test(p.options[name] as string, ctx)));
  }
  list(shell('args'), m.args, false, true);
  list(shell('paths'), m.paths, true);
  list(shell('assigns'), m.assigns);
  list(shell('expands'), m.expands);
  scalar(shell('script') as (p: Part) => Word | undefined, m.script, true);
  scalar(sql('statement') as (p: Part) => Word | undefined, m.statement);
  list(sql('tables'), m.tables);
  if (m.where !== undefined) {
    const allowed = new Set(Array.isArray(m.where) ? m.where : [m.where]);
    tests.push((p) => p.kind === 'sql' && p.where !== null && allowed.has(p.where));
  }
  if (m.readOnly !== undefined) tests.push((p) => p.kind === 'sql' && p.readOnly === m.readOnly);
  list(sql('functions'), m.functions);
  list(sql('settings'), m.settings);
  scalar(http('method') as (p: Part) => Word | undefined, m.method, false, (s) => s.toUpperCase());
  scalar(http('host') as (p: Part) => Word | undefined, m.host, false, (s) => s.toLowerCase());
  scalar(http('path') as (p: Part) => Word | undefined, m.urlPath);
  if (m.port !== undefined) {
    const ports = new Set(Array.isArray(m.port) ? m.port : [m.port]);
    tests.push((p) => p.kind === 'http' && p.port !== null && ports.has(p.port));
  }
  scalar(http('scheme') as (p: Part) => Word | undefined, m.scheme);
  // tool names may hold `/` (`github/create_issue`): `*` crosses it, as in args
  scalar(mcp('server') as (p: Part) => Word | undefined, m.server, false, undefined, true);
  scalar(mcp('tool') as (p: Part) => Word | undefined, m.tool, false, undefined, true);
  if (m.interpreted !== undefined) tests.push((p) => p.kind === 'mcp_tool' && p.interpreted === m.interpreted);
  if (m.annotations !== undefined) {
    const want = Object.entries(m.annotations);
    tests.push((p) => p.kind === 'mcp_tool' && want.every(([k, v]) => p.annotations[k] === v));
  }
  scalar((p) => (p.kind === 'file_read' || p.kind === 'file_write' ? p.path : undefined), m.path, true);
  if (m.tags !== undefined) {
    const wanted = new Set<string>(Array.isArray(m.tags) ? m.tags : [m.tags]);
    tests.push((p) => p.tags.some((t) => wanted.has(t)));
  }
  return (part, ctx) => {
    for (const t of tests) if (!t(part, ctx)) return false;
    return true;
  };
}

const GLOB_CHARS = /[*?[\]{}()!+@]/;

/** Globs over plain strings: exact names go to a set, the rest to picomatch. */
function stringGlobs(g: string | string[], fold?: (s: string) => string): StringTest {
  const patterns = (Array.isArray(g) ? g : [g]).map((p) => (fold ? fold(p) : p));
  const exact = new Set(patterns.filter((p) => !GLOB_CHARS.test(p)));
  const globbed = patterns.filter((p) => GLOB_CHARS.test(p));
  // one alternation instead of a test per pattern
  const match = globbed.length > 0 ? new RegExp(globbed.map((p) => `(?:${picomatch.makeRe(p, { dot: true }).source})`).join('|')) : null;
  return (value) => {
    const v = fold ? fold(value) : value;
    return exact.has(v) || (match !== null && match.test(v));
  };
}

/**
 * Globs where `*` also crosses `/`: arguments are URLs, refspecs and `key=value` pairs, not paths
 * (`https://*` matches `https://a.dev/x.git`). Slashes are swapped for a character globs treat as plain.
 */
function flatGlobs(g: string | string[]): StringTest {
  const SLASH = '\u0001';
  const test = stringGlobs((Array.isArray(g) ? g : [g]).map((p) => p.replaceAll('/', SLASH)));
  return (value, ctx) => test(value.replaceAll('/', SLASH), ctx);
}

/**
 * Path globs: `~` and `~/…` → home, `/…` absolute, `**…` anywhere, anything else relative to the
 * workspace. Compiled per (workspace, home) and cached.
 */
function pathGlobs(g: string | string[]): StringTest {
  const patterns = Array.isArray(g) ? g : [g];
  const cache = new Map<string, StringTest>();
  return (value, ctx) => {
    const key = `${ctx.cwd}\0${ctx.home}`;
    let test = cache.get(key);
    if (test === undefined) {
      if (cache.size > 64) cache.clear();
      test = stringGlobs(patterns.map((p) => anchorPath(p, ctx)));
      cache.set(key, test);
    }
    return test(value, ctx);
  };
}

export function anchorPath(pattern: string, ctx: Context): string {
  if (pattern === '~' || pattern.startsWith('~/')) return ctx.home + pattern.slice(1);
  if (pattern.startsWith('/') || pattern.startsWith('**')) return pattern;
  if (pattern === '.' || pattern === './') return ctx.cwd;
  return `${ctx.cwd}/${pattern.replace(/^\.\//, '')}`;
}

function compileCondition(expr: string): (part: Part, ctx: Context) => boolean | string {
  const { lib, env } = cel();
  const program = lib.plan(env, lib.parse(expr));
  const isCelError = lib.isCelError;
  return (part, ctx) => {
    try {
      const result = program({ part: part as unknown as Record<string, unknown>, context: { cwd: ctx.cwd, home: ctx.home } } as never);
      if (isCelError(result)) return `the condition \`${expr}\` failed: ${result.message}`;
      if (typeof result !== 'boolean') return `the condition \`${expr}\` gave ${typeof result}, not a bool`;
      return result;
    } catch (err) {
      return `the condition \`${expr}\` failed: ${(err as Error).message}`;
    }
  };
}
