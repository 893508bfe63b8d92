import type { ErrorClassSpec } from '../policy/schema.js';

/**
 * The error taxonomy: what an action's failure means for its session. Each class of the policy's
 * `errors:` section matches on what an outcome carries — shell exit codes, SQLSTATE codes or
 * classes (PostgreSQL docs, Appendix A), HTTP status codes, regular expressions on the error text
 * (stderr, an MCP tool's error, Claude Code's `error`) — and is `stop` or `recover`.
 *
 * Evaluation is order-free, like the rules: every class is tried; any matching `stop` class makes
 * the outcome a stop; otherwise the matching `recover` classes give the strictest terms (an
 * approval if any needs one, the smallest budget, the longest backoff). INVARIANT: an error that
 * matches no class is a stop (`unclassified`).
 */

export interface OutcomeFacts {
  /** `refused`: the enforcement point did not run the action; like `ok`, it is not classified. */
  status: 'ok' | 'error' | 'refused';
  exitCode?: number | undefined;
  sqlstate?: string | undefined;
  httpStatus?: number | undefined;
  error?: string | undefined;
}

export interface Classification {
  /** The deciding class (the first stop class matched, or the strictest recover class), or `unclassified`. */
  id: string;
  action: 'stop' | 'recover';
  /** Every class that matched, in policy order. */
  matched: string[];
  /** Recover only: failures of the same action allowed before it is a stop. */
  budget: number;
  /** Recover only: seconds before the same action may run again, doubled after each failure. */
  backoffSeconds: number;
  /** Recover only: a retry needs a reviewer's approval. */
  approval: boolean;
}

export interface CompiledErrorClass {
  id: string;
  action: 'stop' | 'recover';
  test(o: OutcomeFacts): boolean;
  budget: number;
  backoffSeconds: number;
  approval: boolean;
}

export const UNCLASSIFIED = 'unclassified';

/** Compiles the classes; a text pattern that is not a valid regular expression is reported by `problems`. */
export function compileErrors(specs: ErrorClassSpec[], problems: { path: (string | number)[]; message: string }[] = []): CompiledErrorClass[] {
  return specs.map((c, i) => {
    const texts = (c.match.text ?? []).flatMap((t, j) => {
      try {
        return [new RegExp(t, 'i')];
      } catch (err) {
        problems.push({ path: ['errors', i, 'match', 'text', j], message: `not a regular expression: ${(err as Error).message}` });
        return [];
      }
    });
    const codes = new Set(c.match.exitCodes ?? []);
    const states = c.match.sqlstate ?? [];
    const statuses = c.match.httpStatus ?? [];
    return {
      id: c.id,
      action: c.action,
      budget: c.retry?.budget ?? 3,
      backoffSeconds: c.retry?.backoffSeconds ?? 1,
      approval: c.approval === 'required',
      test(o) {
        if (o.exitCode !== undefined && codes.has(o.exitCode)) return true;
        if (o.sqlstate !== undefined && states.some((s) => (s.length === 2 ? o.sqlstate?.startsWith(s) : o.sqlstate === s))) return true;
        if (o.httpStatus !== undefined && statuses.some((s) => (typeof s === 'number' ? s === o.httpStatus : Math.floor((o.httpStatus as number) / 100) === Number(s[0])))) return true;
        return o.error !== undefined && texts.some((r) => r.test(o.error as string));
      },
    };
  });
}

/** The class of a failed outcome; null for a success or a refusal. */
export function classify(classes: CompiledErrorClass[], o: OutcomeFacts): Classification | null {
  if (o.status !== 'error') return null;
  const hits = classes.filter((c) => c.test(o));
  const matched = hits.map((c) => c.id);
  const stop = hits.find((c) => c.action === 'stop');
  if (stop !== undefined) return { id: stop.id, action: 'stop', matched, budget: 0, backoffSeconds: 0, approval: false };
  if (hits.length === 0) return { id: UNCLASSIFIED, action: 'stop', matched, budget: 0, backoffSeconds: 0, approval: false };
  const strictest = [...hits].sort((a, b) => Number(b.approval) - Number(a.approval) || a.budget - b.budget || b.backoffSeconds - a.backoffSeconds)[0] as CompiledErrorClass;
  return {
    id: strictest.id, action: 'recover', matched,
    budget: Math.min(...hits.map((c) => c.budget)),
    backoffSeconds: Math.max(...hits.map((c) => c.backoffSeconds)),
    approval: hits.some((c) => c.approval),
  };
}
