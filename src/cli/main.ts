import { readFileSync } from 'node:fs';
import { agentCommand, approvalCommand, pinsCommand, reviewerCommand, sessionCommand } from './admin.js';
import { audit } from './audit.js';
import { check, CHECK_HELP } from './check.js';
import { processIo, type Io } from './common.js';
import { hook } from './hook.js';
import { init } from './init.js';
import { mcpCommand } from './mcp.js';
import { policyCommand } from './policy.js';
import { scanCommand } from './scan.js';
import { runCommand } from './run.js';
import { secretCommand } from './secret.js';
import { serveCommand } from './serve.js';
import { toolsCommand } from './tools.js';

export const HELP = `Gatehouse — a policy gateway between AI agents and the systems they act on.

Usage: gatehouse <command> [options]

Commands:
  serve      run the gateway: the agents' API, the reviewers' page, the audit trail, the credential proxy
  run        run an agent as a session: scrubbed environment, phantom tokens, closed on exit
  secret     add real credentials to the encrypted secret store (lent to agents as phantom tokens)
  mcp        put Gatehouse in front of an MCP server: every tools/call judged, tools pinned
  tools      an MCP server of governed tools (shell_exec, sql_query) whose limits hold where they run
  pins       list MCP tool pins; accept a tool's changed definition
  agent      register agent identities (each in one environment) and print their tokens
  reviewer   register reviewers and print their sign-in tokens
  session    list sessions, show one with its history, halt one (the kill switch)
  approvals  list pending approvals; approve ID / reject ID answer one
  check      judge a shell command, SQL text or a stream of actions (exit 0 allow, 10 ask, 20 deny)
  policy     test a policy against cases, validate a policy file, print the policy JSON Schema
  init       write the built-in default policy out to edit
  hook       run as an agent hook (claude-code: a PreToolUse hook)
  audit      verify the audit trail's hash chain and signed checkpoints, or export it as JSON Lines
  scan       find credentials an agent could pick up, in files and the environment (exit 1 if any)
  help       this text; \`gatehouse <command> --help\` for a command's options

Examples:
  gatehouse serve                                   # http://127.0.0.1:7800, data in ./.gatehouse
  gatehouse agent add deploy-bot --environment staging
  gatehouse approve apr_… --reason 'row count checked'
  gatehouse check -- 'git status && rm -rf ~'
  gatehouse check --sql 'DELETE FROM orders'
  gatehouse check --jsonl < actions.jsonl
  gatehouse policy test cases.yaml --policy gatehouse.yaml
`;

/**
 * Runs the CLI.
 * @param argv the arguments after the program name.
 * @returns the exit status.
 */
export async function run(argv: string[], io: Io = processIo, stdin: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'check':
      return check(rest, io, stdin);
    case 'policy':
      return policyCommand(rest, io);
    case 'init':
      return init(rest, io);
    case 'hook':
      return hook(rest, io, stdin);
    case 'audit':
      return audit(rest, io);
    case 'scan':
      return scanCommand(rest, io);
    case 'serve':
      return serveCommand(rest, io);
    case 'run':
      return runCommand(rest, io);
    case 'secret':
      return secretCommand(rest, io);
    case 'mcp':
      return mcpCommand(rest, io);
    case 'pins':
      return pinsCommand(rest, io);
    case 'tools':
      return toolsCommand(rest, io);
    case 'agent':
      return agentCommand(rest, io);
    case 'reviewer':
      return reviewerCommand(rest, io);
    case 'session':
      return sessionCommand(rest, io);
    case 'approvals':
    case 'approve':
    case 'reject':
      return approvalCommand(command, rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(command === 'help' && rest[0] === 'check' ? CHECK_HELP : HELP);
      return command === undefined ? 2 : 0;
    case '--version':
    case '-V': {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      io.out(`gatehouse ${pkg.version}\n`);
      return 0;
    }
    default:
      io.err(`gatehouse: unknown command \`${command}\`\n\n${HELP}`);
      return 2;
  }
}
