import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { judges } from '../enforcers/mcp/judge.js';
import { listenForAgents, proxyHandler } from '../enforcers/mcp/listen.js';
import { McpProxy } from '../enforcers/mcp/proxy.js';
import { report, splitAtDashes, usage, type Io } from './common.js';

export const MCP_HELP = `Usage:
  gatehouse mcp [--policy FILE] [--data DIR] [options] -- COMMAND ARGS…
  gatehouse mcp --gateway URL --token AGENT_TOKEN [options] -- COMMAND ARGS…
  gatehouse mcp … --upstream-url URL
  gatehouse mcp … --listen HOST:PORT -- COMMAND ARGS…

Puts Gatehouse in front of an MCP server. It starts COMMAND (an MCP server over stdio), or
reaches --upstream-url (Streamable HTTP), and serves the agent over stdio. Every message passes
through unchanged except tools/call, which is judged as an mcp_tool action: allowed calls are
forwarded, denied ones answered with an error result naming the rule and reason.

Without --gateway, decisions are made in this process with the policy (default: the built-in one)
and recorded in the data directory's audit trail; a call that needs approval is denied, since
nobody can approve it. With --gateway, the proxy opens a session on that gateway with the agent's
token, and a call that needs approval is held until a reviewer answers.

The first listing of the server's tools is pinned: a tool whose definition changes later is denied
until a reviewer accepts it (gatehouse pins accept SERVER TOOL).

Options:
  --name NAME         the server's name in policies and pins (default: from COMMAND, e.g.
                      @modelcontextprotocol/server-filesystem → filesystem)
  --cwd DIR           the agent's workspace (default: the current directory)
  --home DIR          the agent's home (default: $HOME)
  --task TEXT         the session's task (default: "MCP: NAME")
  --token T           the agent token for --gateway (or $GATEHOUSE_AGENT_TOKEN, which keeps it out
                      of the process list); the upstream server never sees GATEHOUSE_* variables
  --agent NAME        without --gateway: the agent's name in the audit trail (default mcp-agent)
  --environment ENV   without --gateway: its environment (default development)
  --timeout SECONDS   how long a forwarded request may wait for the server (default 60)
  --listen HOST:PORT  serve agents over Streamable HTTP at http://HOST:PORT/mcp instead of stdio:
                      each MCP session gets its own upstream and Gatehouse session; with
                      --gateway, each agent sends its own token as Authorization: Bearer

Claude Code (.mcp.json):
  {"mcpServers": {"filesystem": {"command": "gatehouse", "args": ["mcp", "--", "npx", "-y",
    "@modelcontextprotocol/server-filesystem", "/home/dev/app"]}}}
`;

/**
 * A server's name from its command: the package or program that names a server, without
 * `server-`/`mcp-` decorations (`npx -y @modelcontextprotocol/server-filesystem /srv` →
 * `filesystem`; `node …/server-everything/dist/index.js` → `everything`).
 */
export function serverName(command: string[]): string {
  const segments = command.slice(1).filter((w) => !w.startsWith('-')).flatMap((w) => w.split('/'));
  const word = segments.find((w) => /server|mcp/i.test(w) && /^[\w.@^~-]+$/.test(w)) ?? basename(command[0] ?? 'mcp');
  const name = word.replace(/@[\w.^~-]*$/, '').replace(/\.(m?js|ts|py)$/, '').replace(/^(mcp[-_]server[-_]|server[-_]|mcp[-_])/, '').replace(/([-_]mcp[-_]server|[-_]server|[-_]mcp)$/, '');
  return name.replace(/[^A-Za-z0-9_.-]/g, '-') || 'mcp';
}

/** The upstream's environment: this process's, without Gatehouse's own tokens and settings. */
function upstreamEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('GATEHOUSE_')));
}

/** `gatehouse mcp`: resolves when the agent side has closed (stdio) or on SIGTERM/SIGINT (--listen). */
export async function mcpCommand(argv: string[], io: Io): Promise<number> {
  const { options, rest } = splitAtDashes(argv);
  let done: Promise<void>;
  let stop: (why: string) => void;
  try {
    const { values } = parseArgs({
      args: options,
      options: {
        policy: { type: 'string' }, data: { type: 'string' }, gateway: { type: 'string' }, token: { type: 'string' }, 'upstream-url': { type: 'string' },
        listen: { type: 'string' }, name: { type: 'string' }, cwd: { type: 'string' }, home: { type: 'string' }, task: { type: 'string' }, agent: { type: 'string' },
        environment: { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(MCP_HELP);
      return 0;
    }
    const command = rest ?? [];
    const url = values['upstream-url'];
    if ((command.length === 0) === (url === undefined)) throw usage('give the server: -- COMMAND ARGS…, or --upstream-url URL (one of them)');
    if (values.gateway !== undefined && values.policy !== undefined) throw usage('--policy is for the standalone proxy; with --gateway, the gateway\'s policy decides');
    if (values.token !== undefined && values.gateway === undefined) throw usage('--token is an agent token for --gateway URL');
    if (values.gateway !== undefined && values.token === undefined && process.env.GATEHOUSE_AGENT_TOKEN === undefined && values.listen === undefined) throw usage('--gateway needs the agent token: --token T or $GATEHOUSE_AGENT_TOKEN (gatehouse agent add NAME prints one)');
    const timeout = Number(values.timeout ?? 60);
    if (!Number.isFinite(timeout) || timeout < 1 || timeout > 3600) throw usage('--timeout is seconds, 1–3600');
    const listen = values.listen === undefined ? null : /^(.+):(\d+)$/.exec(values.listen);
    if (values.listen !== undefined && (listen === null || Number(listen[2]) > 65535)) throw usage('--listen is HOST:PORT, e.g. 127.0.0.1:7900');
    const server = values.name ?? (url !== undefined ? new URL(url).hostname : serverName(command));
    const cwd = resolve(values.cwd ?? process.cwd());
    const home = resolve(values.home ?? process.env.HOME ?? '/');
    const request = { task: values.task ?? `MCP: ${server}`, workspace: cwd, home };
    const log = (line: string) => io.err(`gatehouse mcp (${server}): ${line}\n`);
    const proxyOptions = { server, cwd, requestTimeoutMs: timeout * 1000, log };

    const token = values.token ?? process.env.GATEHOUSE_AGENT_TOKEN;
    const source = await judges({ ...values, token, listening: listen !== null, request, log });
    const judgeFor = source.judgeFor;
    const closeLocal = () => source.close();
    const upstream = (): Transport => url !== undefined
      ? new StreamableHTTPClientTransport(new URL(url))
      : new StdioClientTransport({ command: command[0] as string, args: command.slice(1), cwd, env: upstreamEnv(), stderr: 'inherit' });

    if (listen !== null) {
      const listening = await listenForAgents(listen[1] as string, Number(listen[2]), proxyHandler(async (token) => ({ upstream: upstream(), judge: await judgeFor(token) }), proxyOptions), log);
      log(`serving agents at ${listening.url}`);
      io.out(`${JSON.stringify({ listening: listening.url })}\n`);
      let finished!: () => void;
      done = new Promise((r) => (finished = r));
      stop = (why) => {
        log(why);
        void listening.close().finally(() => {
          closeLocal();
          finished();
        });
      };
    } else {
      const judge = await judgeFor(undefined);
      const proxy = new McpProxy(new StdioServerTransport(), upstream(), judge, proxyOptions);
      try {
        await proxy.start();
      } catch (err) {
        await judge.close();
        closeLocal();
        throw err;
      }
      log(`session ${judge.session}: judging tools/call of ${command.length > 0 ? command.join(' ') : url}`);
      done = proxy.done.then(closeLocal);
      stop = (why) => void proxy.shutdown(why);
      // the agent going away (end of input) ends the session and stops the server
      process.stdin.once('end', () => stop('the agent closed its input'));
    }
  } catch (err) {
    return report(io, err, 'mcp');
  }
  process.once('SIGTERM', () => stop('stopped by SIGTERM'));
  process.once('SIGINT', () => stop('stopped by SIGINT'));
  await done;
  return 0;
}
