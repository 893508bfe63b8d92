import { z } from 'zod';
import type { Action } from '../../actions/action.js';
import type { Decision } from '../../engine/decide.js';

/**
 * Claude Code's PreToolUse hook as an enforcement point: the hook's JSON in, an {@link Action}
 * out, and the decision back as `hookSpecificOutput`. Shapes per Claude Code's hooks reference
 * ("PreToolUse input", "PreToolUse decision control").
 */

const payloadSchema = z.object({
  session_id: z.string().optional(),
  cwd: z.string().min(1).refine((s) => s.startsWith('/'), 'must be an absolute path'),
  hook_event_name: z.string(),
  tool_name: z.string().min(1),
  tool_input: z.record(z.string(), z.unknown()),
  tool_use_id: z.string().max(200).optional(),
});
export type HookPayload = z.infer<typeof payloadSchema>;

/** PostToolUse (the tool ran) and PostToolUseFailure (it failed: `error`, e.g. "Exit code 2" and stderr). */
const resultSchema = z.object({
  session_id: z.string().min(1).max(200),
  hook_event_name: z.enum(['PostToolUse', 'PostToolUseFailure']),
  tool_name: z.string().min(1),
  tool_use_id: z.string().min(1).max(200),
  tool_response: z.unknown().optional(),
  error: z.string().optional(),
  is_interrupt: z.boolean().optional(),
});
export type HookResult = z.infer<typeof resultSchema>;

/** The event a hook payload is for, read before the rest is validated. */
export function hookEvent(value: unknown): string | null {
  return value !== null && typeof value === 'object' && typeof (value as { hook_event_name?: unknown }).hook_event_name === 'string' ? (value as { hook_event_name: string }).hook_event_name : null;
}

/**
 * A Post hook's payload as an outcome (`POST /v1/sessions/{id}/outcomes` without the decision):
 * PostToolUse → ok; PostToolUseFailure → error with its text, and the exit code when it starts
 * `Exit code N`.
 */
export function hookOutcome(value: unknown): { ok: true; payload: HookResult; outcome: { status: 'ok' | 'error'; exitCode?: number; error?: string } } | { ok: false; reason: string } {
  const parsed = resultSchema.safeParse(value);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return { ok: false, reason: `not a Claude Code ${hookEvent(value) ?? 'hook'} payload: \`${i?.path.join('.') || 'input'}\` ${i?.message ?? ''}` };
  }
  const p = parsed.data;
  if (p.hook_event_name === 'PostToolUse') return { ok: true, payload: p, outcome: { status: 'ok' } };
  const error = (p.error ?? (p.is_interrupt ? 'interrupted by the user' : 'the tool failed')).slice(0, 16000);
  const code = /^Exit code (\d{1,3})\b/.exec(error);
  return { ok: true, payload: p, outcome: { status: 'error', error, ...(code !== null ? { exitCode: Number(code[1]) } : {}) } };
}

/**
 * The answer to a Post hook: on a stop, `continue: false` ends Claude's turn with the reason (the
 * task is over); on a recover, the retry terms go to Claude as context.
 */
export function hookResultOutput(event: string, r: { action: string; message?: string | undefined }): Record<string, unknown> {
  if (r.message === undefined) return {};
  const text = `Gatehouse: ${r.message}`;
  return {
    ...(r.action === 'stop' ? { continue: false, stopReason: text } : {}),
    hookSpecificOutput: { hookEventName: event, additionalContext: text },
  };
}

/** What to judge: an action, or (for a tool Gatehouse has no mapping for) the policy default. */
export type HookAction = { ok: true; action: Action } | { ok: true; unmapped: string } | { ok: false; reason: string };

/**
 * Maps a PreToolUse payload to an action: `Bash` → shell, `Read`/`Grep`/`Glob` → file_read,
 * `Write`/`Edit`/`MultiEdit`/`NotebookEdit` → file_write, `WebFetch` → http GET,
 * `mcp__<server>__<tool>` → mcp_tool; any other tool is unmapped.
 * @param value the parsed JSON from standard input.
 */
export function hookAction(value: unknown): { payload?: HookPayload } & HookAction {
  const parsed = payloadSchema.safeParse(value);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    return { ok: false, reason: `not a Claude Code hook payload: \`${i?.path.join('.') || 'input'}\` ${i?.message ?? ''}` };
  }
  const p = parsed.data;
  if (p.hook_event_name !== 'PreToolUse') return { ok: false, reason: `this hook handles PreToolUse, not ${p.hook_event_name}` };
  const input = p.tool_input;
  const str = (key: string): string | null => (typeof input[key] === 'string' && (input[key] as string).length > 0 ? (input[key] as string) : null);
  const need = (key: string): { ok: false; reason: string } => ({ ok: false, reason: `${p.tool_name}: tool_input.${key} is missing or not a string` });
  const done = (action: Action) => ({ payload: p, ok: true as const, action });
  switch (p.tool_name) {
    case 'Bash': {
      const command = typeof input.command === 'string' ? input.command : null;
      return command === null ? need('command') : done({ kind: 'shell', command, cwd: p.cwd });
    }
    case 'Read': {
      const path = str('file_path');
      return path === null ? need('file_path') : done({ kind: 'file_read', path, cwd: p.cwd });
    }
    case 'Grep': {
      // with a glob, Grep reads the files it names under the path
      const glob = str('glob');
      const base = str('path') ?? p.cwd;
      return done({ kind: 'file_read', path: glob === null ? base : `${base.replace(/\/+$/, '')}/**/${glob.replace(/^\*\*\//, '')}`, cwd: p.cwd });
    }
    case 'Glob': {
      const pattern = str('pattern');
      const base = str('path') ?? p.cwd;
      return done({ kind: 'file_read', path: pattern === null ? base : pattern.startsWith('/') ? pattern : `${base.replace(/\/+$/, '')}/${pattern}`, cwd: p.cwd });
    }
    case 'Write':
    case 'Edit':
    case 'MultiEdit': {
      const path = str('file_path');
      return path === null ? need('file_path') : done({ kind: 'file_write', path, cwd: p.cwd, ...(typeof input.content === 'string' ? { content: input.content } : {}) });
    }
    case 'NotebookEdit': {
      const path = str('notebook_path');
      return path === null ? need('notebook_path') : done({ kind: 'file_write', path, cwd: p.cwd });
    }
    case 'WebFetch': {
      const url = str('url');
      return url === null ? need('url') : done({ kind: 'http', method: 'GET', url });
    }
    default: {
      const mcp = /^mcp__(.+?)__(.+)$/.exec(p.tool_name);
      if (mcp) return done({ kind: 'mcp_tool', server: mcp[1] as string, tool: mcp[2] as string, arguments: input, cwd: p.cwd });
      return { payload: p, ok: true, unmapped: p.tool_name };
    }
  }
}

/** The PreToolUse hook's answer on standard output (exit 0). */
export function hookOutput(decision: Pick<Decision, 'verdict' | 'rule' | 'reasons'>): Record<string, unknown> {
  const reason = `Gatehouse ${decision.verdict} (rule ${decision.rule.id}): ${decision.reasons.join('; ')}`;
  return {
    hookSpecificOutput: {
      hookEventName: 'PreToolUse',
      permissionDecision: decision.verdict,
      permissionDecisionReason: reason.length > 4000 ? reason.slice(0, 3999) + '…' : reason,
    },
  };
}
