import type { Action, Context, Part } from '../actions/action.js';
import { assertNever } from '../actions/action.js';
import { analyzeAction } from '../actions/classify.js';
import { clip } from '../actions/text.js';
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js';
import type { Verdict } from '../policy/schema.js';

/**
 * The policy decision point: `decide(policy, action, context) → decision`. Pure and synchronous
 * once the parsers are loaded (`loadParsers`); no I/O.
 *
 * Evaluation follows AWS IAM's logic: every rule is tested against every part; deny wins over ask,
 * ask over allow, and rule order never matters; a part no rule matches gets the policy's default.
 * The action's verdict is the most restrictive verdict of its parts.
 */

/** The rule that decided, with where it is written. Built-in outcomes use ids with a `gatehouse:` prefix. */
export interface RuleRef {
  id: string;
  file: string | null;
  line: number | null;
}

export interface PartDecision {
  part: Part;
  verdict: Verdict;
  /** The deciding rule for this part (the most restrictive that matched), or the default. */
  rule: RuleRef;
  reasons: string[];
}

export interface Decision {
  verdict: Verdict;
  /** The rule behind the verdict. `gatehouse:default` when no rule matched; `gatehouse:unanalyzable` when the action could not be understood. */
  rule: RuleRef;
  /** Why, for the agent and the reviewer: each reason names the rule's reason, the part and where it came from. */
  reasons: string[];
  /** Every part with its own verdict, in the order found. */
  parts: PartDecision[];
}

const RANK: Record<Verdict, number> = { allow: 0, ask: 1, deny: 2 };
export const DEFAULT_RULE = 'gatehouse:default';
export const UNANALYZABLE_RULE = 'gatehouse:unanalyzable';
export const NOTHING_RUNS_RULE = 'gatehouse:nothing-runs';

/**
 * Decides one action.
 * @param policy a compiled policy (`loadPolicyFile`, `defaultPolicy`).
 * @param action a validated action (`readAction`).
 * @param ctx    workspace (`cwd`) and `home`, both absolute.
 * @returns the decision; never throws (any failure inside is a deny with the reason).
 * @example decide(defaultPolicy(), {kind: 'shell', command: 'rm -rf ~'}, ctx).verdict // 'deny'
 */
export function decide(policy: CompiledPolicy, action: Action, ctx: Context): Decision {
  try {
    const analysis = analyzeAction(action, ctx);
    if (!analysis.ok) return denied(analysis.reason);
    if (analysis.parts.length === 0) {
      // only comments: nothing runs
      return { verdict: 'allow', rule: { id: NOTHING_RUNS_RULE, file: null, line: null }, reasons: ['it runs nothing (only comments)'], parts: [] };
    }
    return decideParts(policy, analysis.parts, ctx);
  } catch (err) {
    return denied(`the decision failed: ${(err as Error).message ?? String(err)}`);
  }
}

/** A deny for an action that could not be analyzed or decided. */
export function denied(reason: string): Decision {
  return { verdict: 'deny', rule: { id: UNANALYZABLE_RULE, file: null, line: null }, reasons: [reason], parts: [] };
}

/** Judges analyzed parts; exported for enforcement points that build parts themselves. */
export function decideParts(policy: CompiledPolicy, parts: Part[], ctx: Context): Decision {
  const decisions = parts.map((part) => judgePart(policy, part, ctx));
  let verdict: Verdict = 'allow';
  for (const d of decisions) if (RANK[d.verdict] > RANK[verdict]) verdict = d.verdict;
  const deciding = decisions.filter((d) => d.verdict === verdict);
  // an explicit rule explains better than the default
  const first = deciding.find((d) => d.rule.id !== DEFAULT_RULE) ?? deciding[0];
  const reasons = [...new Set(deciding.flatMap((d) => d.reasons))].slice(0, 12);
  return { verdict, rule: (first as PartDecision).rule, reasons, parts: decisions };
}

function judgePart(policy: CompiledPolicy, part: Part, ctx: Context): PartDecision {
  const rules = part.kind === 'shell' ? policy.byProgram.get(part.program ?? '') ?? policy.byProgram.get('') ?? [] : policy.byKind.get(part.kind) ?? [];
  let best: CompiledRule | null = null;
  const matched: { rule: CompiledRule; note?: string }[] = [];
  for (const rule of rules) {
    const t = rule.test(part, ctx);
    if (t === false) continue;
    matched.push(t === true ? { rule } : { rule, note: t.conditionError });
    if (best === null || RANK[rule.verdict] > RANK[best.verdict]) best = rule;
  }
  if (best === null) {
    return {
      part, verdict: policy.default, rule: { id: DEFAULT_RULE, file: policy.file, line: null },
      reasons: [`no rule allows ${describePart(part)} (${part.origin}); the policy's default is ${policy.default}`],
    };
  }
  const verdict = best.verdict;
  const reasons = matched
    .filter((m) => m.rule.verdict === verdict)
    .map((m) => `${m.rule.reason ?? `rule ${m.rule.id}`}: ${describePart(part)} (${part.origin})${m.note ? `; ${m.note}` : ''}`);
  return { part, verdict, rule: { id: best.id, file: best.file, line: best.line }, reasons };
}

/** A short, human description of a part, e.g. "`rm -rf ~`" or "DELETE on orders". */
export function describePart(part: Part): string {
  switch (part.kind) {
    case 'shell':
      return `\`${clip(part.text, 80)}\``;
    case 'sql':
      return `${part.statement.toUpperCase().replace(/_/g, ' ')}${part.tables.length ? ` on ${part.tables.join(', ')}` : ''}`;
    case 'http':
      return `${part.method} ${part.url ?? '(a URL from an expansion)'}`;
    case 'mcp_tool':
      return `the tool ${part.server}.${part.tool}`;
    case 'file_read':
      return `reading ${part.path ?? '(a path from an expansion)'}`;
    case 'file_write':
      return `writing ${part.path ?? '(a path from an expansion)'}`;
    default:
      return assertNever(part, 'part kind');
  }
}
