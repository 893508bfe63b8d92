import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Judge } from './judge.js';
import { McpProxy, type ProxyOptions } from './proxy.js';

/**
 * `gatehouse mcp --listen`: the proxy served to agents over Streamable HTTP at `/mcp`. Each MCP
 * session an agent opens gets its own upstream connection, its own proxy and its own Gatehouse
 * session (opened with the agent's bearer token when there is a gateway). DNS-rebinding
 * protection admits only requests addressed to the listening host and port.
 */

/** MCP sessions open at once; more are refused until one closes. */
export const MAX_SESSIONS = 64;

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

export interface Listening {
  url: string;
  /** Open MCP sessions. */
  sessions(): number;
  close(): Promise<void>;
}

/**
 * @param connect makes the upstream and judge of a new MCP session; `token` is the agent's bearer
 *        token, if it sent one. It throws to refuse the session (answered 401 or 502).
 */
export async function listenForAgents(host: string, port: number, connect: (token: string | undefined) => Promise<AgentConnection>, options: ProxyOptions): Promise<Listening> {
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; proxy: McpProxy }>();
  const log = options.log ?? (() => undefined);
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
    let conn: AgentConnection;
    try {
      conn = await connect(auth);
    } catch (err) {
      const gatewaySaid = /answered 401/.test((err as Error).message);
      return refuse(res, gatewaySaid ? 401 : 502, gatewaySaid ? 'missing or invalid credentials' : `cannot start the session: ${(err as Error).message}`);
    }
    let proxy: McpProxy | null = null;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableDnsRebindingProtection: true,
      allowedHosts,
      onsessioninitialized: (id) => {
        if (proxy !== null) sessions.set(id, { transport, proxy });
      },
    });
    proxy = new McpProxy(transport, conn.upstream, conn.judge, options);
    const p = proxy;
    void p.done.then(() => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    });
    try {
      await p.start();
    } catch (err) {
      await p.shutdown(`the upstream could not start: ${(err as Error).message}`);
      return refuse(res, 502, `the upstream MCP server could not start: ${(err as Error).message}`);
    }
    await transport.handleRequest(req, res, body);
    // a first request that did not initialize a session leaves nothing behind
    if (transport.sessionId === undefined) await p.shutdown('the first request was not an initialize');
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
      await Promise.allSettled([...sessions.values()].map((s) => s.proxy.shutdown('the proxy is stopping')));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
