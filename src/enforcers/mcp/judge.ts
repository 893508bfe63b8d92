import { resolve } from 'node:path';
import { loadParsers } from '../../actions/classify.js';
import { Gateway, type DecisionResult, type OutcomeResult } from '../../gateway/gateway.js';
import { defaultPolicy, loadPolicyFile } from '../../policy/load.js';
import { SqliteStore } from '../../store/sqlite/store.js';
import { pinTools, type PinResult, type ToolDefinition } from '../../gateway/pins.js';
import { GatehouseError } from '../../gatehouse-error.js';

/**
 * Where the MCP proxy gets its decisions: the gateway in this process on the local data directory
 * (standalone: an ask is denied, there is no one to hold it for), or a gateway service over HTTP
 * (an ask is held for a reviewer and the proxy waits). Both go through the same pipeline and audit
 * trail; the proxy's MCP session is one Gatehouse session.
 */
export interface Judge {
  /** The Gatehouse session the MCP session maps to. */
  readonly session: string;
  /** Judges one action (the wire format of `POST /v1/sessions/{id}/actions`). @throws on any failure: the caller denies. */
  decide(body: Record<string, unknown>): Promise<DecisionResult>;
  /** Waits until an approval is no longer pending; absent when nobody can answer (standalone). */
  wait?: (approval: string, signal: AbortSignal) => Promise<string>;
  /** Withdraws a pending approval the agent no longer wants (a cancelled call). Never throws. */
  withdraw?: (approval: string) => Promise<void>;
  /** Records what a forwarded call returned; its class, and on a stop the message for the agent. Never throws (null: not recorded). */
  outcome(body: { decision: string; status: 'ok' | 'error' | 'refused'; error?: string; rows?: number; sqlstate?: string; exitCode?: number; httpStatus?: number }): Promise<OutcomeResult | null>;
  /** Compares a server's listing with its pins. @throws on any failure. */
  pin(server: string, tools: ToolDefinition[]): Promise<PinResult>;
  /** Ends the session. Never throws. */
  close(): Promise<void>;
}

/** A judge on the gateway in this process (`gatehouse mcp --policy …`, no service). */
async function localJudge(gw: Gateway, agent: string, environment: string, request: { task: string; workspace?: string; home?: string }): Promise<Judge> {
  const opened = await gw.openLocalSession(agent, environment, request);
  const session = () => gw.authenticateSession(opened.session, opened.token);
  return {
    session: opened.session,
    decide: (body) => gw.act(session(), body),
    async outcome(body) {
      return gw.recordOutcome(session(), body).catch(() => null);
    },
    pin: (server, tools) => pinTools(gw.store, session(), server, tools, new Date().toISOString()),
    async close() {
      await gw.closeSession(opened.session, opened.token).catch(() => undefined);
      try {
        gw.checkpoint();
      } catch {
        // the store is failing; the records are there, the signature is not
      }
    },
  };
}

/**
 * A judge on a gateway service: opens a session with the agent's token.
 * @param url the gateway, e.g. `http://127.0.0.1:7800`.
 * @throws GatehouseError `gateway_refused` when the session cannot be opened.
 */
async function remoteJudge(url: string, agentToken: string, request: { task: string; workspace?: string; home?: string }, timeoutMs = 30_000): Promise<Judge> {
  const call = async (path: string, init: { method?: string; token: string; body?: unknown; timeout?: number; signal?: AbortSignal }) => {
    const signals = [AbortSignal.timeout(init.timeout ?? timeoutMs), ...(init.signal ? [init.signal] : [])];
    const res = await fetch(`${url}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { authorization: `Bearer ${init.token}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.any(signals),
    });
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) {
      const e = (body.error ?? {}) as { code?: string; message?: string };
      throw new GatehouseError('gateway_refused', `the gateway answered ${res.status}: ${e.message ?? 'no reason given'}`, { status: res.status, code: e.code });
    }
    return body;
  };
  const opened = (await call('/v1/sessions', { token: agentToken, body: request })) as { session: string; token: string };
  const token = opened.token;
  const base = `/v1/sessions/${opened.session}`;
  return {
    session: opened.session,
    decide: async (body) => (await call(`${base}/actions`, { token, body })) as unknown as DecisionResult,
    async wait(approval, signal) {
      for (;;) {
        const a = await call(`/v1/approvals/${approval}/wait?timeout=60`, { token, timeout: 90_000, signal });
        if (a.status !== 'pending') return String(a.status);
      }
    },
    async outcome(body) {
      return ((await call(`${base}/outcomes`, { token, body }).catch(() => null)) as OutcomeResult | null);
    },
    async withdraw(approval) {
      await call(`/v1/approvals/${approval}/withdraw`, { token, body: {} }).catch(() => undefined);
    },
    pin: async (server, tools) => (await call(`${base}/tools`, { token, body: { server, tools } })) as unknown as PinResult,
    async close() {
      await call(`${base}/close`, { token, body: {} }).catch(() => undefined);
    },
  };
}

/** Where a long-running enforcement point's judges come from, and how it lets go of them. */
export interface Judges {
  /** A judge for one session; `token` is an agent's own token (listening for several agents). */
  judgeFor(token: string | undefined): Promise<Judge>;
  /** Closes the local store, if any. */
  close(): void;
}

/**
 * Judges for `gatehouse mcp` and `gatehouse tools`: a gateway service when `gateway` is given (each
 * session opened with an agent token), else this process with the policy and the data directory
 * (signing a checkpoint each minute and at the end).
 */
export async function judges(o: { gateway?: string | undefined; token?: string | undefined; listening?: boolean; policy?: string | undefined; data?: string | undefined; agent?: string | undefined; environment?: string | undefined; request: { task: string; workspace?: string; home?: string }; log: (line: string) => void }): Promise<Judges> {
  if (o.gateway !== undefined) {
    const url = o.gateway.replace(/\/$/, '');
    return {
      judgeFor: (token) => {
        // INVARIANT: an agent reaching a listening proxy brings its own token; the operator's is never lent to it
        const t = o.listening ? token : token ?? o.token;
        if (t === undefined) return Promise.reject(new GatehouseError('gateway_refused', 'the gateway answered 401: no agent token'));
        return remoteJudge(url, t, o.request);
      },
      close: () => undefined,
    };
  }
  const policy = o.policy === undefined ? defaultPolicy() : loadPolicyFile(resolve(o.policy));
  await loadParsers();
  const store = SqliteStore.open(resolve(o.data ?? '.gatehouse'));
  const gw = new Gateway(store, () => policy, '');
  const checkpoints = setInterval(() => {
    try {
      gw.checkpoint();
    } catch (err) {
      o.log(`checkpoint failed: ${(err as Error).message}`);
    }
  }, 60_000);
  checkpoints.unref();
  return {
    judgeFor: () => localJudge(gw, o.agent ?? 'mcp-agent', o.environment ?? 'development', o.request),
    close() {
      clearInterval(checkpoints);
      store.close();
    },
  };
}
