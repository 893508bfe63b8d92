import { z } from 'zod';
import type { Action } from './action.js';

/**
 * Reads an action in the corpus / wire format (`{"kind":"shell","command":…,"cwd":…}`, …) into an
 * {@link Action}. Extra fields (`id`, `expect`, `why`, an agent's `reason`) are ignored here.
 */

const absolute = z.string().min(1).refine((s) => s.startsWith('/'), 'must be an absolute path');
const record = z.record(z.string(), z.string());

const actionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('shell'), command: z.string(), cwd: absolute.optional(), env: record.optional() }),
  z.object({ kind: z.literal('sql'), sql: z.string(), dialect: z.literal('postgres').default('postgres') }),
  z.object({ kind: z.literal('http'), method: z.string().min(1), url: z.string().min(1), headers: record.optional(), body: z.string().optional() }),
  z.object({
    kind: z.literal('mcp_tool'), server: z.string().min(1), tool: z.string().min(1),
    arguments: z.record(z.string(), z.unknown()).default({}), annotations: z.record(z.string(), z.unknown()).optional(), cwd: absolute.optional(),
  }),
  z.object({ kind: z.literal('file_read'), path: z.string().min(1), cwd: absolute.optional() }),
  z.object({ kind: z.literal('file_write'), path: z.string().min(1), content: z.string().optional(), cwd: absolute.optional() }),
]);

export type ActionInput = { ok: true; action: Action } | { ok: false; reason: string };

/**
 * @param value a parsed JSON value.
 * @returns the action, or `{ok: false, reason}` naming the first fields that are wrong.
 * @example readAction({kind: 'sql', sql: 'SELECT 1'}) // {ok: true, action: {kind: 'sql', sql: 'SELECT 1', dialect: 'postgres'}}
 */
export function readAction(value: unknown): ActionInput {
  const parsed = actionSchema.safeParse(value);
  if (parsed.success) return { ok: true, action: parsed.data as Action };
  const issues = parsed.error.issues.slice(0, 3).map((i) => {
    const at = i.path.length > 0 ? `\`${i.path.join('.')}\`` : 'the action';
    if (i.code === 'invalid_union' && i.path.length === 0) return 'the action needs a `kind` of shell, sql, http, mcp_tool, file_read or file_write';
    return `${at}: ${i.message.replace(/^Invalid input: /, '')}`;
  });
  return { ok: false, reason: `not an action: ${issues.join('; ')}` };
}
