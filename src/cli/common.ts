import { homedir } from 'node:os';
import { resolve } from 'node:path';
import type { Context } from '../actions/action.js';
import { loadParsers } from '../actions/classify.js';
import { GatehouseError } from '../gatehouse-error.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { defaultPolicy, formatIssues, loadPolicyFile, type PolicyIssue } from '../policy/load.js';
import type { Verdict } from '../policy/schema.js';

/** Exit codes of `gatehouse check` and friends (the CLI contract). */
export const EXIT = { allow: 0, ask: 10, deny: 20, usage: 2, failed: 1 } as const;

export function exitFor(verdict: Verdict): number {
  return EXIT[verdict];
}

/** Output sinks, so commands can be driven in-process as well as from a terminal. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** A usage error: printed with a hint to `--help`, exit 2. */
export function usage(message: string): GatehouseError {
  return new GatehouseError('usage', message);
}

/**
 * Loads `--policy FILE`, or the built-in default when absent, and the parsers.
 * Never reads a policy from the current directory on its own: an agent could write one there.
 * @throws GatehouseError `policy_unreadable` / `policy_invalid`.
 */
export async function preparePolicy(file: string | undefined): Promise<CompiledPolicy> {
  const policy = file === undefined ? defaultPolicy() : loadPolicyFile(resolve(file));
  await loadParsers();
  return policy;
}

/** The context from `--cwd` / `--home`, else the process's own directory and `$HOME`. */
export function contextFrom(cwd: string | undefined, home: string | undefined): Context {
  return { cwd: resolve(cwd ?? process.cwd()), home: resolve(home ?? process.env.HOME ?? homedir()) };
}

/** Errors of state rather than of the call: exit 1 (not 2). */
const STATE_ERRORS = new Set(['unauthorized', 'not_found', 'conflict', 'forbidden', 'approval_expired', 'already_voted', 'name_taken', 'store_unavailable', 'store_missing']);

/**
 * Reports an error from a command and returns its exit code: 1 for a state error (not found,
 * conflict, a store that cannot write), 2 for everything else. With `json`, the error is also one
 * JSON object on standard output: `{"error": {"code", "message"}}`.
 */
export function report(io: Io, err: unknown, command: string, json = false): number {
  if (json) {
    const e = err as { code?: string; message?: string };
    io.out(JSON.stringify({ error: { code: err instanceof GatehouseError ? err.code : e?.code?.startsWith('ERR_PARSE_ARGS') ? 'usage' : 'internal', message: e?.message ?? String(err) } }) + '\n');
  }
  if (err instanceof GatehouseError && STATE_ERRORS.has(err.code)) {
    io.err(`gatehouse ${command}: ${err.message}\n`);
    return EXIT.failed;
  }
  if (err instanceof GatehouseError) {
    if (err.code === 'policy_invalid') {
      io.err(`gatehouse ${command}: the policy is invalid:\n${formatIssues(err.data.issues as PolicyIssue[])}\n`);
      return EXIT.usage;
    }
    if (err.code === 'usage') {
      io.err(`gatehouse ${command}: ${err.message}\nRun \`gatehouse ${command} --help\` for usage.\n`);
      return EXIT.usage;
    }
    io.err(`gatehouse ${command}: ${err.message}\n`);
    return EXIT.usage;
  }
  const e = err as { code?: string; message?: string };
  if (e?.code?.startsWith('ERR_PARSE_ARGS')) {
    io.err(`gatehouse ${command}: ${e.message}\nRun \`gatehouse ${command} --help\` for usage.\n`);
    return EXIT.usage;
  }
  io.err(`gatehouse ${command}: internal error: ${e?.message ?? String(err)}\n`);
  return EXIT.usage;
}

/**
 * An option that is a whole number from `min` to `max` (digits only), or `fallback` when absent.
 * @throws GatehouseError `usage` naming the option and its range.
 */
export function wholeNumber(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw usage(`--${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** Splits argv at the first `--`: options before, the command words after. */
export function splitAtDashes(argv: string[]): { options: string[]; rest: string[] | null } {
  const i = argv.indexOf('--');
  return i < 0 ? { options: argv, rest: null } : { options: argv.slice(0, i), rest: argv.slice(i + 1) };
}
