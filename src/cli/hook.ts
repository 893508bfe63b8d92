import { parseArgs } from 'node:util';
import { decide, DEFAULT_RULE, type Decision } from '../engine/decide.js';
import { hookAction, hookOutput } from '../enforcers/hooks/claude-code.js';
import { contextFrom, EXIT, preparePolicy, usage, type Io } from './common.js';

export const HOOK_HELP = `Usage:
  gatehouse hook claude-code [--policy FILE] [--home DIR]

A Claude Code PreToolUse hook. Reads the hook's JSON on standard input, judges the tool call
(Bash → shell, Read/Grep/Glob → file_read, Write/Edit/MultiEdit/NotebookEdit → file_write,
WebFetch → http GET, mcp__<server>__<tool> → mcp_tool; any other tool gets the policy's default)
and prints {"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":…,
"permissionDecisionReason":…}}.

Any failure inside the hook blocks the call: exit 2 with the reason on standard error.
`;

/** Bytes of hook input read at most; a larger payload is refused (and so blocked). */
export const MAX_HOOK_INPUT = 8 * 1024 * 1024;

/**
 * `gatehouse hook claude-code`. Exit 0 with the decision on stdout; exit 2 (which Claude Code
 * treats as a block) with the reason on stderr for anything else.
 */
export async function hook(argv: string[], io: Io, stdin: NodeJS.ReadableStream): Promise<number> {
  const block = (reason: string) => {
    io.err(`Gatehouse blocked this call: ${reason}\n`);
    return EXIT.usage;
  };
  try {
    const [agent, ...rest] = argv;
    if (agent === '--help' || agent === '-h') {
      io.out(HOOK_HELP);
      return 0;
    }
    if (agent !== 'claude-code') throw usage(agent === undefined ? 'name the agent: gatehouse hook claude-code' : `no hook for \`${agent}\`; supported: claude-code`);
    const { values } = parseArgs({ args: rest, options: { policy: { type: 'string' }, home: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      io.out(HOOK_HELP);
      return 0;
    }
    const policy = await preparePolicy(values.policy);
    const raw = await readAll(stdin, MAX_HOOK_INPUT);
    if (raw === null) return block(`the hook input is larger than ${MAX_HOOK_INPUT} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch (err) {
      return block(`the hook input is not valid JSON: ${(err as Error).message}`);
    }
    const mapped = hookAction(value);
    if (!mapped.ok) return block(mapped.reason);
    const ctx = contextFrom(mapped.payload?.cwd, values.home);
    let decision: Decision;
    if ('unmapped' in mapped) {
      decision = {
        verdict: policy.default,
        rule: { id: DEFAULT_RULE, file: policy.file, line: null },
        reasons: [`Gatehouse has no mapping for the tool ${mapped.unmapped}; the policy's default is ${policy.default}`],
        parts: [],
      };
    } else decision = decide(policy, mapped.action, ctx);
    io.out(JSON.stringify(hookOutput(decision)) + '\n');
    return 0;
  } catch (err) {
    return block((err as Error).message ?? String(err));
  }
}

async function readAll(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > limit) return null;
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
