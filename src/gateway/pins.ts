import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { canonical } from '../audit/chain.js';
import { redactValue } from '../audit/redact.js';
import { GatehouseError } from '../gatehouse-error.js';
import type { SessionRecord, SqliteStore } from '../store/sqlite/store.js';

/**
 * Tool pinning: the defence against an MCP server that rewrites a tool after it was trusted. Pins are
 * kept per agent (an agent's sessions can neither mark nor pre-pin another agent's tools). The
 * first `tools/list` of a server pins each tool's definition (name, description, input schema) by
 * hash; a later listing that describes a tool differently marks it changed, with the diff in the
 * audit trail, and every call to it is denied until a reviewer accepts the new definition.
 * A tool first seen later is pinned then (and recorded as added).
 */

/** What a server says of a tool in `tools/list`. */
export interface ToolDefinition {
  name: string;
  description?: string | undefined;
  inputSchema?: unknown;
  annotations?: Record<string, unknown> | undefined;
}

export interface PinResult {
  /** Tools whose definition changed since they were pinned: calls are denied. */
  changed: { tool: string; diff: string }[];
  /** Tools seen for the first time and pinned now. */
  added: string[];
}

/**
 * The pinned part of a definition: name, description and input schema, and also the annotations,
 * title and output schema: a server that flips `destructiveHint` would otherwise turn an ask into
 * an allow without a review.
 */
function pinned(t: ToolDefinition): Record<string, unknown> {
  const x = t as ToolDefinition & { title?: unknown; outputSchema?: unknown };
  return { name: t.name, title: x.title ?? null, description: t.description ?? null, inputSchema: t.inputSchema ?? null, outputSchema: x.outputSchema ?? null, annotations: t.annotations ?? null };
}

function toolHash(t: ToolDefinition): string {
  return createHash('sha256').update(canonical(pinned(t)), 'utf8').digest('hex');
}

/** A unified diff of two definitions, as pretty JSON. */
export function toolDiff(server: string, before: unknown, after: unknown): string {
  const name = (after as { name?: string }).name ?? 'tool';
  return createTwoFilesPatch(`${server}/${name} (pinned)`, `${server}/${name} (now)`, `${JSON.stringify(before, null, 2)}\n`, `${JSON.stringify(after, null, 2)}\n`, undefined, undefined, { context: 2 });
}

/**
 * Compares a server's listing with its pins, pinning new tools and marking changed ones; each
 * change is an audit record with the diff. Commits with its records.
 * @throws GatehouseError `input_invalid` for a listing that is not a list of named tools; `store_unavailable`.
 */
export async function pinTools(store: SqliteStore, session: SessionRecord, server: string, listed: ToolDefinition[], time: string): Promise<PinResult> {
  if (!Array.isArray(listed)) throw new GatehouseError('input_invalid', 'tools must be a list of {name, description, inputSchema}');
  // an entry without a name can never be called: it is left out, the rest is pinned
  const tools = listed.filter((t) => t !== null && typeof t === 'object' && typeof t.name === 'string' && t.name !== '');
  const defs = await redactValue(tools.map(pinned));
  return store.batched(() => {
    const result: PinResult = { changed: [], added: [] };
    const base = { time, session: session.id, agent: session.agent, environment: session.environment, server };
    tools.forEach((t, i) => {
      const hash = toolHash(t);
      const def = defs[i];
      const pin = store.toolPin(session.agent, server, t.name);
      if (pin === undefined) {
        store.pinTool(session.agent, server, t.name, hash, def, time, `first listing (session ${session.id})`);
        result.added.push(t.name);
      } else if (pin.hash !== hash && pin.changedHash !== hash) {
        const diff = toolDiff(server, pin.definition, def);
        store.markToolChanged(session.agent, server, t.name, hash, def);
        store.audit.append({ ...base, type: 'mcp.tool.changed', tool: t.name, pinnedHash: pin.hash, hash, diff });
        result.changed.push({ tool: t.name, diff });
      } else if (pin.status === 'changed') {
        result.changed.push({ tool: t.name, diff: toolDiff(server, pin.definition, pin.changedDefinition) });
      }
    });
    if (result.added.length > 0) store.audit.append({ ...base, type: 'mcp.tools.pinned', tools: result.added });
    return result;
  });
}

/**
 * A reviewer accepts a changed tool's new definition: it becomes the pin and calls are judged again.
 * @param hash the changed definition's hash the reviewer saw (`gatehouse pins list`).
 * @throws GatehouseError `not_found` (no such pin), `conflict` (not changed), `store_unavailable`.
 */
export function acceptTool(store: SqliteStore, agent: string, server: string, tool: string, hash: string, reviewer: string, time: string): void {
  store.transaction(() => {
    const pin = store.toolPin(agent, server, tool);
    if (pin === undefined) throw new GatehouseError('not_found', `no pinned tool ${tool} of ${server} for the agent ${agent}`);
    if (pin.status !== 'changed' || pin.changedHash === null) throw new GatehouseError('conflict', `${server}/${tool} has not changed since it was pinned`);
    // INVARIANT: a reviewer accepts the definition they saw, not whatever the server says by the time they answer
    if (pin.changedHash !== hash) throw new GatehouseError('conflict', `${server}/${tool} changed again since that definition (now ${pin.changedHash.slice(0, 12)}…): review the new diff`);
    store.pinTool(agent, server, tool, pin.changedHash, pin.changedDefinition, time, reviewer);
    store.audit.append({ time, type: 'mcp.tool.accepted', agent, server, tool, reviewer, hash: pin.changedHash, previousHash: pin.hash });
  });
}

/** Why a call to this tool is refused now (its definition changed), or null. */
export function toolRefusal(store: SqliteStore, agent: string, server: string, tool: string): string | null {
  const pin = store.toolPin(agent, server, tool);
  return pin?.status === 'changed'
    ? `the server changed the definition of \`${tool}\` since it was pinned; a reviewer must accept the new definition (gatehouse pins accept ${server} ${tool} --agent ${agent} --hash ${pin.changedHash})`
    : null;
}
