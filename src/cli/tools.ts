import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import pg from 'pg';
import { z } from 'zod';
import { judges, type Judge } from '../enforcers/mcp/judge.js';
import { sqlQuery } from '../tools/sql.js';
import { report, usage, type Io } from './common.js';

export const TOOLS_HELP = `Usage:
  gatehouse tools --database URL [--policy FILE] [--data DIR] [options]
  gatehouse tools --database URL --gateway URL --token AGENT_TOKEN [options]

An MCP server (stdio) of governed tools, each judged by the pipeline and run by Gatehouse so that
the limits hold in the systems themselves:

  sql_query {sql, reason?}   SQL against the PostgreSQL at --database (or $DATABASE_URL).
      Reads run in a READ ONLY transaction. Writes are first run in a transaction that is rolled
      back, so the database counts the rows each statement touches; past the policy's
      limits.maxRowsPerStatement (or the session's limits.maxRowsPerSession) the call needs an
      approval showing the exact count ("DELETE on orders would touch 100,000 rows"), and an
      approved statement runs once, committing only if the count is still the one approved.
      Every statement has a timeout; transaction control and SET are refused.

Options:
  --database URL            postgres://user@host:port/db (default $DATABASE_URL)
  --statement-timeout SECS  per statement and per lock wait (default 30)
  --cwd DIR, --task TEXT    the session's workspace and task
  --agent NAME, --environment ENV   without --gateway: the names in the audit trail

Without --gateway a call that needs approval is denied (nobody can approve it); with --gateway it
is held on the reviewers' page.
`;

/** `gatehouse tools`: serves until the agent closes its input. */
export async function toolsCommand(argv: string[], io: Io): Promise<number> {
  let judge: Judge;
  let pool: pg.Pool;
  let close: () => void;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        database: { type: 'string' }, policy: { type: 'string' }, data: { type: 'string' }, gateway: { type: 'string' }, token: { type: 'string' },
        'statement-timeout': { type: 'string' }, cwd: { type: 'string' }, task: { type: 'string' }, agent: { type: 'string' }, environment: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(TOOLS_HELP);
      return 0;
    }
    const database = values.database ?? process.env.DATABASE_URL;
    if (database === undefined) throw usage('give the database: --database postgres://… (or set DATABASE_URL)');
    if (values.gateway !== undefined && values.policy !== undefined) throw usage('--policy is for the standalone server; with --gateway, the gateway\'s policy decides');
    if ((values.gateway === undefined) !== (values.token === undefined)) throw usage('--gateway and --token go together (the token is an agent token: gatehouse agent add NAME)');
    const timeout = Number(values['statement-timeout'] ?? 30);
    if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) throw usage('--statement-timeout is seconds, up to 3600');
    const log = (line: string) => io.err(`gatehouse tools: ${line}\n`);
    const cwd = resolve(values.cwd ?? process.cwd());
    const source = await judges({ ...values, request: { task: values.task ?? 'governed tools', workspace: cwd, home: process.env.HOME ?? '/' }, log });
    judge = await source.judgeFor(undefined);
    pool = new pg.Pool({ connectionString: database, max: 4, connectionTimeoutMillis: 10_000 });
    pool.on('error', (err) => log(`database: ${err.message}`));
    const server = new McpServer({ name: 'gatehouse-tools', version: '0.1.0' });
    server.registerTool('sql_query', {
      description: 'Run SQL against the configured PostgreSQL. Reads run read-only; writes are counted first, and a statement that touches more rows than the policy allows waits for a human approval showing the count. Give a reason: it is shown to the reviewer.',
      inputSchema: { sql: z.string().min(1).max(256 * 1024), reason: z.string().max(4096).optional() },
      annotations: { destructiveHint: true, openWorldHint: false },
    }, ({ sql, reason }) => sqlQuery(pool, judge, sql, { timeoutMs: timeout * 1000 }, reason));
    const transport = new StdioServerTransport();
    await server.connect(transport);
    log(`session ${judge.session}: serving sql_query`);
    let closing = false;
    close = () => {
      if (closing) return;
      closing = true;
      void (async () => {
        await server.close().catch(() => undefined);
        await judge.close();
        await pool.end().catch(() => undefined);
        source.close();
        process.exit(0);
      })();
    };
  } catch (err) {
    return report(io, err, 'tools');
  }
  process.stdin.once('end', close);
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
  return new Promise<number>(() => undefined);
}
