import { parseArgs } from 'node:util';
import type { Action, Context } from '../actions/action.js';
import { readAction } from '../actions/input.js';
import { decide, denied, type Decision } from '../engine/decide.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { contextFrom, EXIT, exitFor, preparePolicy, report, splitAtDashes, usage, type Io } from './common.js';
import { decisionJson, decisionText } from './format.js';

export const CHECK_HELP = `Usage:
  gatehouse check [--policy FILE] [--cwd DIR] [--home DIR] [--json] -- COMMAND…
  gatehouse check [--policy FILE] [--json] --sql "TEXT"
  gatehouse check --jsonl [--policy FILE] [--cwd DIR] [--home DIR] < actions.jsonl

Judges an action against a policy (the built-in default unless --policy) and prints the verdict,
the deciding rule (id, file:line), the reasons and every part found in the action.

  -- COMMAND…     a shell command; the words are joined with spaces and parsed as bash
  --sql TEXT      a PostgreSQL text (any number of statements)
  --jsonl         read one action per line from standard input, in the corpus format
                  ({"id":…,"kind":"shell","command":…,"cwd":…}, {"kind":"sql","sql":…}, …), and
                  write one line per input line: {"id","verdict","rule","reasons"}. A malformed
                  line gets a deny with the reason and the run goes on.
  --policy FILE   a policy file (YAML); never read from the current directory unless named here
  --cwd DIR       the workspace the action runs in (default: this directory). In --jsonl, a line
                  without its own cwd uses this, else the cwd of the latest line that had one
  --home DIR      the agent's home directory, for ~ and $HOME (default: $HOME)
  --json          print one JSON object instead of text

Exit status: 0 allow, 10 ask, 20 deny, 2 usage or policy error (--jsonl: 0 once every line is judged).
`;

/** `gatehouse check`: exit status 0 allow, 10 ask, 20 deny, 2 usage or policy error. */
export async function check(argv: string[], io: Io, stdin: NodeJS.ReadableStream): Promise<number> {
  try {
    const { options, rest } = splitAtDashes(argv);
    const { values, positionals } = parseArgs({
      args: options,
      allowPositionals: true,
      options: {
        policy: { type: 'string' }, cwd: { type: 'string' }, home: { type: 'string' }, json: { type: 'boolean' },
        sql: { type: 'string' }, jsonl: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(CHECK_HELP);
      return 0;
    }
    if (positionals.length > 0) throw usage(`put the command after \`--\`: gatehouse check -- ${positionals.join(' ')}`);
    const modes = [rest !== null, values.sql !== undefined, values.jsonl === true].filter(Boolean).length;
    if (modes !== 1) throw usage('give exactly one of `-- COMMAND…`, `--sql TEXT` or `--jsonl`');
    const policy = await preparePolicy(values.policy);
    const ctx = contextFrom(values.cwd, values.home);
    if (values.jsonl) return await checkJsonl(policy, ctx, values.cwd !== undefined, io, stdin);
    let action: Action;
    if (values.sql !== undefined) action = { kind: 'sql', sql: values.sql, dialect: 'postgres' };
    else {
      const command = (rest as string[]).join(' ');
      if (command.trim() === '') throw usage('the command after `--` is empty');
      action = { kind: 'shell', command, cwd: ctx.cwd };
    }
    const decision = decide(policy, action, ctx);
    io.out(values.json ? JSON.stringify(decisionJson(decision)) + '\n' : decisionText(decision));
    return exitFor(decision.verdict);
  } catch (err) {
    return report(io, err, 'check');
  }
}

/**
 * Judges a stream of corpus-format lines, writing each answer as soon as its line is complete.
 * Bytes are split on LF and each line is decoded as strict UTF-8, so invalid input is denied
 * with a reason rather than silently repaired.
 */
async function checkJsonl(policy: CompiledPolicy, ctx: Context, cwdGiven: boolean, io: Io, stdin: NodeJS.ReadableStream): Promise<number> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let lastCwd = ctx.cwd;
  let pending = Buffer.alloc(0);
  const judge = (bytes: Buffer) => {
    let id: unknown = null;
    let decision: Decision;
    try {
      const text = decoder.decode(bytes);
      if (text.trim() === '') decision = denied('the line is empty');
      else {
        const value: unknown = JSON.parse(text);
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) id = (value as { id?: unknown }).id ?? null;
        const read = readAction(value);
        if (!read.ok) decision = denied(read.reason);
        else {
          const own = (read.action as { cwd?: string }).cwd;
          if (own !== undefined && !cwdGiven) lastCwd = own;
          decision = decide(policy, read.action, { cwd: own ?? (cwdGiven ? ctx.cwd : lastCwd), home: ctx.home });
        }
      }
    } catch (err) {
      decision = denied(err instanceof TypeError ? 'the line is not valid UTF-8' : `the line is not valid JSON: ${(err as Error).message}`);
    }
    io.out(JSON.stringify({ id, verdict: decision.verdict, rule: decision.rule.id, reasons: decision.reasons }) + '\n');
  };
  for await (const chunk of stdin) {
    pending = Buffer.concat([pending, typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)]);
    let nl: number;
    while ((nl = pending.indexOf(0x0a)) >= 0) {
      judge(pending.subarray(0, nl > 0 && pending[nl - 1] === 0x0d ? nl - 1 : nl));
      pending = pending.subarray(nl + 1);
    }
  }
  if (pending.length > 0) judge(pending);
  return EXIT.allow;
}
