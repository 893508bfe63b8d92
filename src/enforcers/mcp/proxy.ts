import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isJSONRPCError, isJSONRPCNotification, isJSONRPCRequest, isJSONRPCResponse, type JSONRPCMessage, type JSONRPCRequest, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { randomUUID } from 'node:crypto';
import type { DecisionResult } from '../../gateway/gateway.js';
import type { ToolDefinition } from '../../gateway/pins.js';
import type { Judge } from './judge.js';

/**
 * The MCP enforcement point: a JSON-RPC relay between an agent and an upstream MCP server that
 * passes every message through unchanged except `tools/call`, which becomes an `mcp_tool` action
 * judged by the pipeline: allow → forwarded; deny → a tool result with `isError: true` and the
 * reason; ask → held until a reviewer answers (then forwarded with exactly the approved
 * arguments), or denied when nobody can answer.
 *
 * The proxy lists the server's tools itself once the agent has initialized, pins them (see
 * `gateway/pins.ts`) and takes each tool's annotations from that listing. A call to a tool the
 * server does not list is denied. Every forwarded call's result status is recorded.
 */

export interface ProxyOptions {
  /** The server's name in actions and pins, e.g. `filesystem`. */
  server: string;
  /** The agent's workspace: relative paths in arguments resolve against it. */
  cwd: string;
  /** How long a forwarded request may wait for the upstream, in ms (default 60,000). */
  requestTimeoutMs?: number;
  /** Largest `arguments` of a call, in bytes of JSON (default 1 MiB). */
  maxArgumentBytes?: number;
  /** Diagnostics, to standard error (stdout is the protocol). */
  log?: (line: string) => void;
}

interface Forwarded {
  method: string;
  timer: NodeJS.Timeout;
  decision?: string;
}

const TOOL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$/;

export class McpProxy {
  private readonly tools = new Map<string, ToolDefinition>();
  private listed: Promise<void> | null = null;
  private readonly forwarded = new Map<RequestId, Forwarded>();
  private readonly own = new Map<RequestId, (msg: JSONRPCMessage) => void>();
  private readonly held = new Map<RequestId, AbortController>();
  /** Ids of agent requests being judged, held or forwarded. */
  private readonly inFlight = new Set<RequestId>();
  /** Calls the agent cancelled while they were being judged. */
  private readonly cancelled = new Set<RequestId>();
  /** False once a listing could not be pinned: every call is refused until one is. */
  private pinsHold = true;
  /** Tools left out because their definition changed since pinned (a reviewer may accept it meanwhile). */
  private readonly blocked = new Set<string>();
  private readonly ownPrefix = `gatehouse-${randomUUID()}-`;
  private ownCount = 0;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly maxArgs: number;
  private readonly log: (line: string) => void;
  /** Resolves when either side has closed and everything is shut down. */
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(private readonly agent: Transport, private readonly upstream: Transport, private readonly judge: Judge, private readonly options: ProxyOptions) {
    this.timeoutMs = options.requestTimeoutMs ?? 60_000;
    this.maxArgs = options.maxArgumentBytes ?? 1024 * 1024;
    this.log = options.log ?? (() => undefined);
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  /** Starts both transports (upstream first: a server that cannot start fails here). */
  async start(): Promise<void> {
    this.agent.onmessage = (msg) => this.fromAgent(msg);
    this.upstream.onmessage = (msg) => this.fromUpstream(msg);
    this.agent.onerror = (err) => {
      this.log(`agent side: ${err.message}`);
      // a line that is not JSON-RPC gets the spec's answer (-32700 parse error, id null), not silence
      if (err.name === 'SyntaxError' || err.name === 'ZodError') this.send(this.agent, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Gatehouse: that message is not JSON-RPC 2.0; it was dropped' } } as unknown as JSONRPCMessage);
    };
    this.upstream.onerror = (err) => this.log(`upstream: ${err.message}`);
    this.agent.onclose = () => void this.shutdown('the agent closed the connection');
    this.upstream.onclose = () => void this.shutdown('the upstream MCP server exited');
    await this.upstream.start();
    await this.agent.start();
  }

  // ── agent → upstream ────────────────────────────────────────────────────────────────────────

  private fromAgent(msg: JSONRPCMessage): void {
    if (isJSONRPCRequest(msg)) {
      if (this.inFlight.has(msg.id)) {
        this.send(this.agent, { jsonrpc: '2.0', id: msg.id, error: { code: -32600, message: `Gatehouse: request id ${JSON.stringify(msg.id)} is already in use by a request still open` } });
        return;
      }
      if (msg.method.trim().toLowerCase() === 'tools/call') {
        this.inFlight.add(msg.id);
        this.call(msg)
          .catch((err: Error) => this.refuse(msg, `the call could not be judged (${err.message}); nothing was run`))
          .finally(() => {
            // a forwarded call stays in flight until its answer
            if (!this.forwarded.has(msg.id)) this.inFlight.delete(msg.id);
            this.cancelled.delete(msg.id);
          });
      } else this.forward(msg);
      return;
    }
    if (isJSONRPCNotification(msg)) {
      // INVARIANT: only notifications reach the upstream from the agent without a judgement; nothing shaped like a call does
      if (!msg.method.startsWith('notifications/')) {
        this.log(`dropped a notification \`${msg.method.slice(0, 60)}\` from the agent: only notifications/* pass`);
        return;
      }
      if (msg.method === 'notifications/cancelled') {
        const id = (msg.params as { requestId?: RequestId } | undefined)?.requestId as RequestId;
        // a call still being judged when it is cancelled is remembered, so it is never held
        if (this.held.has(id)) this.held.get(id)?.abort();
        else if (this.inFlight.has(id)) this.cancelled.add(id);
      }
      this.send(this.upstream, msg);
      if (msg.method === 'notifications/initialized') this.listed = this.listAndPin();
      return;
    }
    this.send(this.upstream, msg);
  }

  private forward(msg: JSONRPCRequest, decision?: string): void {
    const timer = setTimeout(() => {
      if (!this.forwarded.delete(msg.id)) return;
      this.inFlight.delete(msg.id);
      const error = `the upstream MCP server did not answer ${msg.method} within ${this.timeoutMs / 1000} s`;
      if (decision !== undefined) void this.judge.outcome({ decision, status: 'error', error });
      this.send(this.agent, { jsonrpc: '2.0', id: msg.id, error: { code: -32001, message: `Gatehouse: ${error}` } });
    }, this.timeoutMs);
    this.forwarded.set(msg.id, { method: msg.method, timer, decision });
    this.inFlight.add(msg.id);
    if (this.closed) return;
    // an upstream that cannot take the request (an HTTP server that is down) is answered now, not at the timeout
    this.upstream.send(msg).catch((err: Error) => {
      const f = this.forwarded.get(msg.id);
      if (f === undefined) return;
      clearTimeout(f.timer);
      this.forwarded.delete(msg.id);
      this.inFlight.delete(msg.id);
      const error = `the upstream MCP server could not be reached: ${err.message}`;
      if (decision !== undefined) void this.judge.outcome({ decision, status: 'error', error });
      this.send(this.agent, { jsonrpc: '2.0', id: msg.id, error: { code: -32002, message: `Gatehouse: ${error}` } });
    });
  }

  /** Judges a tools/call; forwards it only on allow (or an approval that turned into allow). */
  private async call(msg: JSONRPCRequest): Promise<void> {
    const params = (msg.params ?? {}) as { name?: unknown; arguments?: unknown };
    const name = params.name;
    const args = params.arguments ?? {};
    if (typeof name !== 'string' || !TOOL_NAME.test(name)) return this.refuse(msg, `the tool name ${JSON.stringify(String(name)).slice(0, 80)} is not a tool name`);
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return this.refuse(msg, '`arguments` must be an object');
    const shape = badShape(args);
    if (shape !== null) return this.refuse(msg, shape);
    const size = Buffer.byteLength(JSON.stringify(args));
    if (size > this.maxArgs) return this.refuse(msg, `the arguments are ${size} bytes; the limit is ${this.maxArgs}`);
    await Promise.race([this.listed, new Promise((r) => setTimeout(r, this.timeoutMs).unref())]);
    if (!this.pinsHold) return this.refuse(msg, `${this.options.server}'s tools could not be listed and pinned; no call runs until they are`);
    if (this.blocked.has(name)) {
      // changed since pinned: list again, in case a reviewer has accepted the new definition
      this.listed = this.listAndPin();
      await this.listed;
    }
    const tool = this.tools.get(name);
    if (tool === undefined && this.blocked.has(name)) return this.refuse(msg, `the server changed the definition of \`${name}\` since it was pinned; a reviewer must accept it (gatehouse pins list ${this.options.server})`);
    if (tool === undefined) return this.refuse(msg, `${this.options.server} lists no tool named \`${name}\``);
    const body = { kind: 'mcp_tool', server: this.options.server, tool: name, arguments: args, annotations: tool.annotations, cwd: this.options.cwd };
    const judged = await this.decide(body);
    if (judged === null) return this.refuse(msg, 'the decision failed; nothing was run');
    if (judged.verdict === 'allow') return this.forward(msg, judged.decision);
    if (judged.verdict === 'deny') return this.refuse(msg, explain('denied', judged));
    // ask
    if (this.judge.wait === undefined || judged.approval === undefined) {
      return this.refuse(msg, `${explain('needs a reviewer\'s approval', judged)}. This proxy runs without a gateway service, so nobody can approve it: run it with --gateway URL --token T to hold such calls for a reviewer.`);
    }
    if (this.cancelled.has(msg.id)) {
      await this.judge.withdraw?.(judged.approval.id);
      return this.refuse(msg, 'the call was cancelled; its approval is withdrawn');
    }
    const abort = new AbortController();
    this.held.set(msg.id, abort);
    this.log(`holding ${name} for approval ${judged.approval.id}: ${judged.approval.url}`);
    let status: string;
    try {
      status = await this.judge.wait(judged.approval.id, abort.signal);
    } catch (err) {
      status = abort.signal.aborted ? 'cancelled' : `unknown (${(err as Error).message})`;
    } finally {
      this.held.delete(msg.id);
    }
    // the agent cancelled the call: its approval must not stay on the reviewers' page
    if (status === 'cancelled') await this.judge.withdraw?.(judged.approval.id);
    if (status !== 'approved') return this.refuse(msg, `the approval ${judged.approval.id} ended ${status}; nothing was run`);
    // the approval covers this exact action once: the same body is judged again and consumes it
    const again = await this.decide(body);
    if (again?.verdict !== 'allow') return this.refuse(msg, again === null ? 'the decision failed; nothing was run' : explain('denied after the approval', again));
    this.forward(msg, again.decision);
  }

  private async decide(body: Record<string, unknown>): Promise<DecisionResult | null> {
    try {
      return await this.judge.decide(body);
    } catch (err) {
      this.log(`decision failed: ${(err as Error).message}`);
      return null;
    }
  }

  /** Answers a call with a tool error the agent can read: the call did not run. */
  private refuse(msg: JSONRPCRequest, text: string): void {
    this.send(this.agent, { jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: `Gatehouse: ${text}` }], isError: true } });
  }

  // ── upstream → agent ────────────────────────────────────────────────────────────────────────

  private fromUpstream(msg: JSONRPCMessage): void {
    if (isJSONRPCResponse(msg) || isJSONRPCError(msg)) {
      const id = msg.id as RequestId;
      const mine = this.own.get(id);
      if (mine !== undefined) {
        this.own.delete(id);
        mine(msg);
        return;
      }
      const f = this.forwarded.get(id);
      if (f === undefined) return; // timed out earlier, or never asked: dropped
      this.forwarded.delete(id);
      this.inFlight.delete(id);
      clearTimeout(f.timer);
      if (f.decision !== undefined) {
        const failed = isJSONRPCError(msg) ? msg.error.message : (msg.result as { isError?: boolean }).isError === true ? textOf(msg.result) : null;
        if (failed === null) void this.judge.outcome({ decision: f.decision, status: 'ok' });
        else {
          // a failure is classified before the agent sees it: on a stop, the agent is told plainly that the task is over
          void this.judge.outcome({ decision: f.decision, status: 'error', error: failed.slice(0, 4000) }).then((r) => {
            const note = r?.message === undefined ? null : { type: 'text', text: `Gatehouse: ${r.message}` };
            if (note !== null && isJSONRPCResponse(msg)) this.send(this.agent, { ...msg, result: { ...msg.result, content: [...(((msg.result as { content?: unknown[] }).content) ?? []), note] } });
            else this.send(this.agent, note !== null && isJSONRPCError(msg) ? { ...msg, error: { ...msg.error, message: `${msg.error.message} — Gatehouse: ${r?.message}` } } : msg);
          });
          return;
        }
      }
      if (f.method === 'tools/list' && isJSONRPCResponse(msg)) {
        // the agent's own listing: pinned before the agent sees it; a tool whose definition changed is left out
        const tools = (msg.result as { tools?: ToolDefinition[] }).tools ?? [];
        void this.pin(tools).then((blocked) => {
          if (blocked === null) this.send(this.agent, { jsonrpc: '2.0', id, error: { code: -32603, message: `Gatehouse: ${this.options.server}'s tools could not be pinned; no call runs until they are` } });
          else this.send(this.agent, { ...msg, result: { ...msg.result, tools: tools.filter((t) => !blocked.has(t?.name)) } });
        });
        return;
      }
      this.send(this.agent, msg);
      return;
    }
    if (isJSONRPCNotification(msg) && msg.method === 'notifications/tools/list_changed') this.listed = this.listAndPin();
    this.send(this.agent, msg);
  }

  /** The proxy's own `tools/list` (every page: at most 100, a cursor seen twice ends it), pinned. */
  private async listAndPin(): Promise<void> {
    const all: ToolDefinition[] = [];
    const cursors = new Set<string>();
    let cursor: string | undefined;
    try {
      for (let page = 0; page < 100; page++) {
        const res = await this.request('tools/list', cursor === undefined ? {} : { cursor });
        if (isJSONRPCError(res)) throw new Error(res.error.message);
        const result = (res as { result: { tools?: ToolDefinition[]; nextCursor?: string } }).result;
        all.push(...(result.tools ?? []));
        cursor = result.nextCursor;
        if (cursor === undefined || cursors.has(cursor) || all.length >= 10_000) break;
        cursors.add(cursor);
      }
      if (cursor !== undefined && !cursors.has(cursor) && all.length < 10_000) throw new Error('more than 100 pages');
      await this.pin(all, true);
    } catch (err) {
      this.pinsHold = false;
      this.log(`could not list ${this.options.server}'s tools (${(err as Error).message}); every call is denied`);
    }
  }

  /**
   * Pins a listing; returns the names of tools that may not be called (changed definitions), or
   * null when the listing could not be pinned (then every call is refused: fail closed).
   */
  private async pin(tools: ToolDefinition[], complete = false): Promise<Set<string> | null> {
    try {
      const result = await this.judge.pin(this.options.server, tools);
      if (complete) this.tools.clear();
      const blocked = new Set(result.changed.map((c) => c.tool));
      if (complete) this.blocked.clear();
      for (const t of tools) if (!blocked.has(t.name)) {
        this.tools.set(t.name, t);
        this.blocked.delete(t.name);
      }
      for (const name of blocked) {
        this.tools.delete(name);
        this.blocked.add(name);
      }
      for (const c of result.changed) this.log(`${this.options.server}/${c.tool} changed since it was pinned; its calls are denied until a reviewer accepts it`);
      this.pinsHold = true;
      return blocked;
    } catch (err) {
      this.pinsHold = false;
      this.tools.clear();
      this.log(`pinning failed (${(err as Error).message}); every call is refused until a listing is pinned`);
      return null;
    }
  }

  private request(method: string, params: Record<string, unknown>): Promise<JSONRPCMessage> {
    const id = `${this.ownPrefix}${++this.ownCount}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.own.delete(id);
        reject(new Error(`no answer to ${method} within ${this.timeoutMs / 1000} s`));
      }, this.timeoutMs);
      this.own.set(id, (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      this.send(this.upstream, { jsonrpc: '2.0', id, method, params });
    });
  }

  private send(to: Transport, msg: JSONRPCMessage): void {
    if (this.closed) return;
    to.send(msg).catch((err: Error) => this.log(`could not send to the ${to === this.agent ? 'agent' : 'upstream'}: ${err.message}`));
  }

  // ── shutdown ────────────────────────────────────────────────────────────────────────────────

  /** Answers everything still open with an error, records it, and closes both sides and the session. */
  async shutdown(why: string): Promise<void> {
    if (this.closed) return;
    for (const [id, f] of this.forwarded) {
      clearTimeout(f.timer);
      if (f.decision !== undefined) void this.judge.outcome({ decision: f.decision, status: 'error', error: why });
      this.send(this.agent, { jsonrpc: '2.0', id, error: { code: -32603, message: `Gatehouse: ${why} before answering ${f.method}` } });
    }
    this.forwarded.clear();
    for (const abort of this.held.values()) abort.abort();
    this.log(why);
    this.closed = true;
    await Promise.allSettled([this.agent.close(), this.upstream.close()]);
    await this.judge.close();
    this.finish();
  }
}

/** Arguments no server should receive: nesting past 64 levels, keys that reach object prototypes. */
function badShape(value: unknown): string | null {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (depth > 64) return 'the arguments nest deeper than 64 levels';
    for (const key of Object.keys(v)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') return `the argument key \`${key}\` is refused: it reaches object prototypes in the server`;
      stack.push([(v as Record<string, unknown>)[key], depth + 1]);
    }
  }
  return null;
}

function explain(what: string, d: DecisionResult): string {
  return `this call ${what} (rule ${d.rule.id}): ${d.reasons.join('; ')}`;
}

function textOf(result: unknown): string {
  const content = (result as { content?: { type?: string; text?: string }[] }).content ?? [];
  return content.filter((c) => c.type === 'text').map((c) => c.text ?? '').join('\n') || 'the tool reported an error';
}
