import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import pg from 'pg';
import { z } from 'zod';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { judges, type Judge } from '../enforcers/mcp/judge.js';
import { listenForAgents, type SessionHandler } from '../enforcers/mcp/listen.js';
import { Sandbox } from '../tools/sandbox.js';
import { shellExec } from '../tools/shell.js';
import { checkRole, sqlQuery } from '../tools/sql.js';
import { GatehouseError } from '../gatehouse-error.js';
import { report, usage, wholeNumber, type Io } from './common.js';

export const TOOLS_HELP = `Usage:
  gatehouse tools [--workspace DIR] [--database URL] [--policy FILE] [--data DIR] [options]
  gatehouse tools … --gateway URL --token AGENT_TOKEN

An MCP server (stdio) of governed tools, each judged by the pipeline and run by Gatehouse so that
the limits hold in the systems themselves:

  shell_exec {command, cwd?, reason?}   (with --workspace) bash in a sandbox (bubblewrap, via
      @anthropic-ai/sandbox-runtime): writable only in the workspace, homes and credential files
      hidden, the network only to --allow-host hosts, an environment of PATH, HOME (the workspace),
      LANG and TERM only. Killed past --exec-timeout, --max-output, --max-processes, --max-memory;
      one file may not pass --max-file. Secrets in the output are masked.

  sql_query {sql, reason?}   SQL against the PostgreSQL at --database (or $DATABASE_URL).
      Reads run in a READ ONLY transaction. Writes are first run in a transaction that is rolled
      back, so the database counts the rows each statement touches; past the policy's
      limits.maxRowsPerStatement (or the session's limits.maxRowsPerSession) the call needs an
      approval showing the exact count ("DELETE on orders would touch 100,000 rows"), and an
      approved statement runs once, committing only if the count is still the one approved.
      Every statement has a timeout; transaction control and SET are refused.

Options:
  --workspace DIR           offer shell_exec, running in DIR
  --allow-host HOST         a host shell_exec may reach (repeatable; default none)
  --hide PATH               a path shell_exec may not read (repeatable), besides homes, /tmp and
                            /var/tmp (other than its own), /etc/shadow, /etc/ssh and the data
                            directory; with --gateway, hide the gateway's data directory here
  --exec-timeout SECS       default 30;  --max-output BYTES  default 1048576
  --max-file BYTES          default 104857600;  --max-processes N  default 256
  --max-memory BYTES        memory of a command's whole tree, its files in /tmp included
                            (default 536870912)
  --database URL            offer sql_query on postgres://user@host:port/db (or $DATABASE_URL);
                            the role may not be a superuser or have REPLICATION or BYPASSRLS
  --statement-timeout SECS  per statement and per lock wait (default 30)
  --cwd DIR, --task TEXT    the session's workspace and task
  --listen HOST:PORT        serve agents over Streamable HTTP at http://HOST:PORT/mcp (each MCP
                            session its own Gatehouse session; behind a gateway each agent sends
                            its own token as Authorization: Bearer) instead of stdio
  --token T                 the agent token for --gateway (or $GATEHOUSE_AGENT_TOKEN)
  --agent NAME, --environment ENV   without --gateway: the names in the audit trail

Without --gateway a call that needs approval is denied (nobody can approve it); with --gateway it
is held on the reviewers' page.
`;

/** `gatehouse tools`: serves until the agent closes its input. */
export async function toolsCommand(argv: string[], io: Io): Promise<number> {
  let pool: pg.Pool | undefined;
  let sandbox: Sandbox | undefined;
  let close: () => void;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        database: { type: 'string' }, policy: { type: 'string' }, data: { type: 'string' }, gateway: { type: 'string' }, token: { type: 'string' },
        'statement-timeout': { type: 'string' }, cwd: { type: 'string' }, task: { type: 'string' }, agent: { type: 'string' }, environment: { type: 'string' },
        workspace: { type: 'string' }, 'allow-host': { type: 'string', multiple: true }, 'exec-timeout': { type: 'string' }, 'max-output': { type: 'string' },
        'max-file': { type: 'string' }, 'max-processes': { type: 'string' }, 'max-memory': { type: 'string' },
        listen: { type: 'string' }, hide: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(TOOLS_HELP);
      return 0;
    }
    const listen = values.listen === undefined ? null : /^(.+):(\d+)$/.exec(values.listen);
    if (values.listen !== undefined && (listen === null || Number(listen[2]) > 65535)) throw usage('--listen is HOST:PORT, e.g. 127.0.0.1:7901');
    const database = values.database ?? process.env.DATABASE_URL;
    const workspace = values.workspace === undefined ? undefined : resolve(values.workspace);
    if (database === undefined && workspace === undefined) throw usage('give --workspace DIR (shell_exec), --database URL (sql_query), or both');
    const limits = {
      timeoutMs: wholeNumber('exec-timeout', values['exec-timeout'], 30, 1, 3600) * 1000,
      maxOutputBytes: wholeNumber('max-output', values['max-output'], 1 << 20, 1, 64 << 20),
      maxFileBytes: wholeNumber('max-file', values['max-file'], 100 << 20, 1, 2 ** 40),
      maxPids: wholeNumber('max-processes', values['max-processes'], 256, 1, 4096),
      maxMemoryBytes: wholeNumber('max-memory', values['max-memory'], 512 << 20, 16 << 20, 2 ** 40),
    };
    if (values.gateway !== undefined && values.policy !== undefined) throw usage('--policy is for the standalone server; with --gateway, the gateway\'s policy decides');
    const token = values.token ?? process.env.GATEHOUSE_AGENT_TOKEN;
    if (values.token !== undefined && values.gateway === undefined) throw usage('--token is an agent token for --gateway URL');
    if (values.gateway !== undefined && token === undefined && listen === null) throw usage('--gateway needs the agent token: --token T or $GATEHOUSE_AGENT_TOKEN');
    const timeout = Number(values['statement-timeout'] ?? 30);
    if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) throw usage('--statement-timeout is seconds, up to 3600');
    const log = (line: string) => io.err(`gatehouse tools: ${line}\n`);
    const cwd = workspace ?? resolve(values.cwd ?? process.cwd());
    const source = await judges({ ...values, token, listening: listen !== null, request: { task: values.task ?? 'governed tools', workspace: cwd, home: process.env.HOME ?? '/' }, log });
    const offered: string[] = [];
    if (database !== undefined) {
      pool = new pg.Pool({ connectionString: database, max: 4, connectionTimeoutMillis: 10_000 });
      pool.on('error', (err) => log(`database: ${err.message}`));
      await checkRole(pool).catch((err: Error) => {
        throw err instanceof GatehouseError ? err : new GatehouseError('database_unreachable', `the database at --database could not be reached: ${err.message}`);
      });
      offered.push('sql_query');
    }
    if (workspace !== undefined) {
      sandbox = await Sandbox.start(values['allow-host'] ?? [], [resolve(values.data ?? '.gatehouse'), ...(values.hide ?? []).map((h) => resolve(h))]);
      offered.push('shell_exec');
    }
    const p = pool;
    const box = sandbox;
    /** The tools server of one session. */
    const toolsServer = (judge: Judge): McpServer => {
      const server = new McpServer({ name: 'gatehouse-tools', version: '0.1.0' });
      // INVARIANT: a session's SQL calls run one at a time, so each is judged against the rows the ones before it touched
      let sqlTurn: Promise<unknown> = Promise.resolve();
      if (p !== undefined) {
        server.registerTool('sql_query', {
          description: 'Run SQL against the configured PostgreSQL. Reads run read-only; writes are counted first, and a statement that touches more rows than the policy allows waits for a human approval showing the count. Give a reason: it is shown to the reviewer.',
          inputSchema: { sql: z.string().min(1).max(256 * 1024), reason: z.string().max(4096).optional() },
          annotations: { destructiveHint: true, openWorldHint: false },
        }, ({ sql, reason }, extra) => {
          const turn = sqlTurn.then(() => sqlQuery(p, judge, sql, { timeoutMs: timeout * 1000, signal: extra.signal }, reason));
          sqlTurn = turn.catch(() => undefined);
          return turn;
        });
      }
      if (box !== undefined && workspace !== undefined) {
        server.registerTool('shell_exec', {
          description: `Run a bash command in the workspace (${workspace}), sandboxed: the workspace is the only writable place, the network reaches only allowed hosts, the environment holds no credentials. Give a reason: it is shown to a reviewer when the command needs approval.`,
          inputSchema: { command: z.string().min(1).max(256 * 1024), cwd: z.string().max(4096).optional(), reason: z.string().max(4096).optional() },
          annotations: { destructiveHint: true, openWorldHint: true },
        }, ({ command, cwd: dir, reason }, extra) => shellExec(box, judge, workspace, command, dir, limits, reason, extra.signal));
      }
      return server;
    };
    /** Serves one session on a transport; its Gatehouse session ends with it. */
    const serveOn = async (token: string | undefined, transport: Transport): Promise<SessionHandler> => {
      const judge = await source.judgeFor(token);
      const server = toolsServer(judge);
      let finished!: () => void;
      const done = new Promise<void>((r) => (finished = r));
      server.server.onclose = () => void judge.close().finally(finished);
      await server.connect(transport);
      log(`session ${judge.session}: serving ${offered.join(' and ')}`);
      return { done, shutdown: async () => { await server.close().catch(() => undefined); await done; } };
    };
    let sessions: { close(): Promise<void> };
    if (listen !== null) {
      const listening = await listenForAgents(listen[1] as string, Number(listen[2]), serveOn, log);
      io.out(`${JSON.stringify({ listening: listening.url })}\n`);
      sessions = listening;
    } else {
      const one = await serveOn(undefined, new StdioServerTransport());
      sessions = { close: () => one.shutdown('the agent closed its input') };
      process.stdin.once('end', () => close());
    }
    let closing = false;
    close = () => {
      if (closing) return;
      closing = true;
      void (async () => {
        await sessions.close().catch(() => undefined);
        await pool?.end().catch(() => undefined);
        await sandbox?.stop().catch(() => undefined);
        source.close();
        process.exit(0);
      })();
    };
  } catch (err) {
    return report(io, err, 'tools');
  }
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
  return new Promise<number>(() => undefined);
}
