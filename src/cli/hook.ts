import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Context } from '../actions/action.js';
import { decide, DEFAULT_RULE, type Decision } from '../engine/decide.js';
import { hookAction, hookEvent, hookOutcome, hookOutput, hookResultOutput } from '../enforcers/hooks/claude-code.js';
import { GatehouseError } from '../gatehouse-error.js';
import { Gateway, type DecisionResult, type OutcomeResult } from '../gateway/gateway.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { SqliteStore, type SessionRecord } from '../store/sqlite/store.js';
import { contextFrom, EXIT, preparePolicy, usage, type Io } from './common.js';

export const HOOK_HELP = `Usage:
  gatehouse hook claude-code [--policy FILE] [--data DIR] [--home DIR] [--agent NAME] [--environment ENV]
  gatehouse hook claude-code --gateway URL [--token T] [--data DIR]
  gatehouse hook claude-code --stateless [--policy FILE] [--home DIR]

Claude Code's PreToolUse, PostToolUse and PostToolUseFailure hook. Reads the hook's JSON on
standard input.

PreToolUse: judges the tool call (Bash → shell, Read/Grep/Glob → file_read,
Write/Edit/MultiEdit/NotebookEdit → file_write, WebFetch → http GET, mcp__<server>__<tool> →
mcp_tool; any other tool gets the policy's default) and prints {"hookSpecificOutput":
{"hookEventName":"PreToolUse","permissionDecision":…,"permissionDecisionReason":…}}.

PostToolUse / PostToolUseFailure: reports the outcome (Claude Code's \`error\`, e.g. "Exit code 2"
and stderr) to the error taxonomy. On a stop — a stop-class error, an unclassified one, a spent
retry budget, the circuit breaker — the session is halted and the hook answers {"continue": false,
"stopReason": …}: Claude stops, and every later tool call of the session is denied.

Session state: each Claude Code session (its session_id) is a Gatehouse session. Without
--gateway it lives in the data directory (default ./.gatehouse; decisions, outcomes and halts in
its audit trail), so a halt holds across hook processes; \`gatehouse session resume\` lifts it.
Its sessions are the agent --agent (default claude-code) in --environment (default local): a
policy with an \`agents:\` section must name it.
With --gateway URL the gateway holds it (agent token: --token or $GATEHOUSE_AGENT_TOKEN; the data
directory keeps only which session is which). --stateless judges each call alone, as before.

Any failure inside the hook blocks the call: exit 2 with the reason on standard error.
`;

/** Bytes of hook input read at most; a larger payload is refused (and so blocked). */
export const MAX_HOOK_INPUT = 8 * 1024 * 1024;

/** Where a hook's sessions live: in the data directory, or on a gateway. */
interface HookState {
  /** Judges an action in the session of Claude Code's `key`, and remembers the decision for the tool call. */
  decide(key: string, toolUseId: string | undefined, body: Record<string, unknown>): Promise<Pick<DecisionResult, 'verdict' | 'rule' | 'reasons'>>;
  /** Why the session of `key` may not act (halted, …), or null: for tools Gatehouse cannot map. */
  refusal(key: string): Promise<string | null>;
  /** Reports what a tool call did; null when the call's decision is not known here. */
  outcome(toolUseId: string, outcome: Record<string, unknown>): Promise<OutcomeResult | null>;
  close(): void;
}

/**
 * \`gatehouse hook claude-code\`. Exit 0 with the answer on stdout; exit 2 (which Claude Code
 * treats as a block) with the reason on stderr for anything else.
 */
export async function hook(argv: string[], io: Io, stdin: NodeJS.ReadableStream): Promise<number> {
  const block = (reason: string) => {
    io.err(`Gatehouse blocked this call: ${reason}\n`);
    return EXIT.usage;
  };
  let state: HookState | null = null;
  try {
    const [agent, ...rest] = argv;
    if (agent === '--help' || agent === '-h') {
      io.out(HOOK_HELP);
      return 0;
    }
    if (agent !== 'claude-code') throw usage(agent === undefined ? 'name the agent: gatehouse hook claude-code' : `no hook for \`${agent}\`; supported: claude-code`);
    const { values } = parseArgs({
      args: rest,
      options: {
        policy: { type: 'string' }, home: { type: 'string' }, data: { type: 'string' }, gateway: { type: 'string' }, token: { type: 'string' },
        agent: { type: 'string' }, environment: { type: 'string' }, stateless: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(HOOK_HELP);
      return 0;
    }
    if (values.gateway !== undefined && (values.policy !== undefined || values.stateless)) throw usage('with --gateway, the gateway\'s policy decides: drop --policy and --stateless');
    const policy = await preparePolicy(values.policy);
    const raw = await readAll(stdin, MAX_HOOK_INPUT);
    if (raw === null) return block(`the hook input is larger than ${MAX_HOOK_INPUT} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch (err) {
      return block(`the hook input is not valid JSON: ${(err as Error).message}`);
    }
    const event = hookEvent(value);
    if (event === 'PostToolUse' || event === 'PostToolUseFailure') {
      if (values.stateless) return 0;
      const read = hookOutcome(value);
      // a Post hook cannot block what already ran: a payload it cannot read is reported, not fatal
      if (!read.ok) {
        io.err(`gatehouse hook: ${read.reason}\n`);
        return 0;
      }
      state = await openState(values, policy);
      const r = await state.outcome(read.payload.tool_use_id, read.outcome);
      io.out(JSON.stringify(r === null ? {} : hookResultOutput(event, r)) + '\n');
      return 0;
    }
    const mapped = hookAction(value);
    if (!mapped.ok) return block(mapped.reason);
    const ctx = contextFrom(mapped.payload?.cwd, values.home);
    const key = mapped.payload?.session_id;
    if (values.stateless || key === undefined) {
      let decision: Decision;
      if ('unmapped' in mapped) decision = unmappedDecision(policy, mapped.unmapped);
      else decision = decide(policy, mapped.action, ctx);
      io.out(JSON.stringify(hookOutput(decision)) + '\n');
      return 0;
    }
    state = await openState(values, policy, ctx);
    // an unmapped tool is judged as the policy's default, but only while the session may act at all
    if ('unmapped' in mapped) {
      const refused = await state.refusal(key);
      io.out(JSON.stringify(hookOutput(refused === null ? unmappedDecision(policy, mapped.unmapped) : { verdict: 'deny', rule: { id: 'gatehouse:session', file: null, line: null }, reasons: [refused] })) + '\n');
      return 0;
    }
    const d = await state.decide(key, mapped.payload?.tool_use_id, mapped.action as unknown as Record<string, unknown>);
    io.out(JSON.stringify(hookOutput(d)) + '\n');
    return 0;
  } catch (err) {
    return block((err as Error).message ?? String(err));
  } finally {
    state?.close();
  }
}

function unmappedDecision(policy: CompiledPolicy, tool: string): Decision {
  return {
    verdict: policy.default,
    rule: { id: DEFAULT_RULE, file: policy.file, line: null },
    reasons: [`Gatehouse has no mapping for the tool ${tool}; the policy's default is ${policy.default}`],
    parts: [],
  };
}

async function openState(values: { data?: string | undefined; gateway?: string | undefined; token?: string | undefined; agent?: string | undefined; environment?: string | undefined }, policy: CompiledPolicy, ctx: Context = contextFrom(undefined, undefined)): Promise<HookState> {
  const store = SqliteStore.open(resolve(values.data ?? '.gatehouse'));
  try {
    return values.gateway === undefined ? localState(store, policy, ctx, values.agent ?? 'claude-code', values.environment ?? 'local') : remoteState(store, values.gateway.replace(/\/+$/, ''), values.token ?? process.env.GATEHOUSE_AGENT_TOKEN);
  } catch (err) {
    store.close();
    throw err;
  }
}

/** Sessions in the data directory, judged by a gateway in this process. */
function localState(store: SqliteStore, policy: CompiledPolicy, ctx: Context, agent: string, environment: string): HookState {
  const gw = new Gateway(store, () => policy, '');
  /** The session of Claude Code's key: the mapped one while it is active or halted (a halt holds); a new one once it ended. */
  const sessionFor = async (key: string): Promise<SessionRecord> => {
    const mapped = store.hookSession(key);
    const s = mapped === undefined ? undefined : store.session(mapped.session);
    if (s !== undefined && (gw.effectiveState(s) === 'active' || s.state === 'halted')) return s;
    const opened = await gw.openLocalSession(agent, environment, { task: `Claude Code session ${key.slice(0, 80)}`, workspace: ctx.cwd, home: ctx.home });
    store.transaction(() => store.setHookSession(key, opened.session, null, null));
    return store.session(opened.session) as SessionRecord;
  };
  return {
    async decide(key, toolUseId, body) {
      const session = await sessionFor(key);
      const d = await gw.act(session, body);
      if (toolUseId !== undefined) store.transaction(() => store.setHookCall(toolUseId, session.id, d.decision, new Date().toISOString()));
      return d;
    },
    async refusal(key) {
      const mapped = store.hookSession(key);
      const s = mapped === undefined ? undefined : store.session(mapped.session);
      return s?.state === 'halted' ? `the session is halted: ${s.stateReason ?? ''}` : null;
    },
    async outcome(toolUseId, outcome) {
      const call = store.hookCall(toolUseId);
      const session = call === undefined ? undefined : store.session(call.session);
      if (call === undefined || session === undefined) return null;
      return gw.recordOutcome(session, { ...outcome, decision: call.decision });
    },
    close: () => store.close(),
  };
}

/** Sessions on a gateway; the data directory keeps only which Gatehouse session is Claude Code's. */
function remoteState(store: SqliteStore, gateway: string, agentToken: string | undefined): HookState {
  if (agentToken === undefined || agentToken === '') throw usage('--gateway needs the agent token: --token T or $GATEHOUSE_AGENT_TOKEN');
  const post = async (path: string, token: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${gateway}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
    const value = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) throw new GatehouseError('gateway_refused', `the gateway answered ${res.status}: ${(value.error as { message?: string } | undefined)?.message ?? 'no reason given'}`);
    return value;
  };
  const open = async (key: string) => {
    const opened = await post('/v1/sessions', agentToken, { task: `Claude Code session ${key.slice(0, 80)}` }) as { session: string; token: string };
    store.transaction(() => store.setHookSession(key, opened.session, opened.token, gateway));
    return { session: opened.session, token: opened.token };
  };
  return {
    async decide(key, toolUseId, body) {
      const mapped = store.hookSession(key);
      let s = mapped?.token != null && mapped.gateway === gateway ? { session: mapped.session, token: mapped.token } : await open(key);
      let d = await post(`/v1/sessions/${s.session}/actions`, s.token, body) as unknown as DecisionResult;
      // an expired or closed session is replaced; a halted one holds
      if (d.rule.id === 'gatehouse:session-expired' || d.rule.id === 'gatehouse:session-closed') {
        s = await open(key);
        d = await post(`/v1/sessions/${s.session}/actions`, s.token, body) as unknown as DecisionResult;
      }
      if (toolUseId !== undefined) store.transaction(() => store.setHookCall(toolUseId, s.session, d.decision, new Date().toISOString()));
      return d;
    },
    // the gateway answers for its sessions when an action comes; an unmapped tool gets the policy's default
    refusal: async () => null,
    async outcome(toolUseId, outcome) {
      const call = store.hookCall(toolUseId);
      const token = call === undefined ? undefined : store.hookSessionOf(call.session);
      if (call === undefined || token === undefined) return null;
      return await post(`/v1/sessions/${call.session}/outcomes`, token, { ...outcome, decision: call.decision }) as unknown as OutcomeResult;
    },
    close: () => store.close(),
  };
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
