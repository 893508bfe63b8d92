import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Judge } from './judge.js';
import { McpProxy, type ProxyOptions } from './proxy.js';

/**
 * An MCP endpoint over Streamable HTTP at `/mcp`, for `gatehouse mcp --listen` and `gatehouse
 * tools --listen`. Each MCP session an agent opens gets its own handler (a proxy with its own
 * upstream, or a tools server) and its own Gatehouse session (opened with the agent's bearer token
 * when there is a gateway). Only a host and port of this listener are admitted (DNS rebinding),
 * and nothing starts for a first request that is not an initialize.
 */

/** What serves one MCP session: started on its transport, shut down when the session or the listener ends. */
export interface SessionHandler {
  readonly done: Promise<void>;
  shutdown(why: string): Promise<void>;
}

/** MCP sessions open at once; more are refused until one closes. */
const MAX_SESSIONS = 64;

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1024 * 1024) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

export interface AgentConnection {
  upstream: Transport;
  judge: Judge;
}

/** A handler that proxies the session to an upstream MCP server (`gatehouse mcp --listen`). */
export function proxyHandler(connect: (token: string | undefined) => Promise<AgentConnection>, options: ProxyOptions) {
  return async (token: string | undefined, transport: Transport): Promise<SessionHandler> => {
    const conn = await connect(token);
    const proxy = new McpProxy(transport, conn.upstream, conn.judge, options);
    try {
      await proxy.start();
    } catch (err) {
      await proxy.shutdown(`the upstream could not start: ${(err as Error).message}`);
      throw new Error(`the upstream MCP server could not start: ${(err as Error).message}`);
    }
    return proxy;
  };
}

export interface Listening {
  url: string;
  /** Open MCP sessions. */
  sessions(): number;
  close(): Promise<void>;
}

/**
 * @param open starts the handler of a new MCP session on its transport; `token` is the agent's
 *        bearer token, if it sent one. It throws to refuse the session (answered 401 or 502).
 */
export async function listenForAgents(host: string, port: number, open: (token: string | undefined, transport: Transport) => Promise<SessionHandler>, log: (line: string) => void): Promise<Listening> {
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; handler: SessionHandler }>();
  let allowedHosts: string[] = [];

  const refuse = (res: ServerResponse, status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: `Gatehouse: ${message}` } }));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // DNS rebinding: a page elsewhere must not reach this proxy through a name that resolves here
    if (!allowedHosts.includes(req.headers.host ?? '')) return refuse(res, 403, `requests must be addressed to ${allowedHosts.join(' or ')}`);
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') return refuse(res, 404, 'the MCP endpoint is /mcp');
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const s = sessions.get(sid);
      if (s === undefined) return refuse(res, 404, 'no such MCP session (it ended, or the proxy restarted): initialize again');
      return s.transport.handleRequest(req, res);
    }
    if (req.method !== 'POST') return refuse(res, 400, 'start an MCP session with an initialize request');
    if (sessions.size >= MAX_SESSIONS) return refuse(res, 503, `${MAX_SESSIONS} MCP sessions are open; close one first`);
    // nothing starts (no upstream, no Gatehouse session) for a first request that is not an initialize
    const body = await readJson(req);
    if (body === undefined || !isInitializeRequest(body)) return refuse(res, 400, 'start an MCP session with an initialize request (a JSON body of at most 1 MiB)');
    const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    let handler: SessionHandler | null = null;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableDnsRebindingProtection: true,
      allowedHosts,
      onsessioninitialized: (id) => {
        if (handler !== null) sessions.set(id, { transport, handler });
      },
    });
    try {
      handler = await open(auth, transport);
    } catch (err) {
      const gatewaySaid = /answered 401/.test((err as Error).message);
      return refuse(res, gatewaySaid ? 401 : 502, gatewaySaid ? 'missing or invalid credentials' : `cannot start the session: ${(err as Error).message}`);
    }
    const h = handler;
    void h.done.then(() => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    });
    await transport.handleRequest(req, res, body);
    // a first request that did not initialize a session leaves nothing behind
    if (transport.sessionId === undefined) await h.shutdown('the first request was not an initialize');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      log(`request failed: ${err.message}`);
      if (!res.headersSent) refuse(res, 500, 'internal error');
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  allowedHosts = [`${hostPart}:${actual}`, ...(host === '127.0.0.1' || host === '::1' ? [`localhost:${actual}`] : [])];
  return {
    url: `http://${hostPart}:${actual}/mcp`,
    sessions: () => sessions.size,
    async close() {
      await Promise.allSettled([...sessions.values()].map((s) => s.handler.shutdown('the listener is stopping')));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
