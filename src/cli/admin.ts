import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Gateway } from '../gateway/gateway.js';
import { acceptTool, toolDiff } from '../gateway/pins.js';
import { GatehouseError } from '../gatehouse-error.js';
import { defaultPolicy, loadPolicyFile } from '../policy/load.js';
import { mintToken, tokenHash } from '../sessions/tokens.js';
import { SqliteStore } from '../store/sqlite/store.js';
import { report, usage, type Io } from './common.js';

/**
 * The operator's commands on a data directory: agents, reviewers, sessions and approvals. They
 * work on the store directly (the same SQLite file a running gateway uses, which sees their
 * changes within a quarter second) and go through the gateway's own methods, so each change has
 * its audit record. Every command that changes something takes `--json`.
 */

export const AGENT_HELP = `Usage:
  gatehouse agent add NAME --environment ENV [--policy FILE] [--data DIR] [--json]
  gatehouse agent rotate NAME [--data DIR] [--json]
  gatehouse agent remove NAME [--data DIR] [--json]
  gatehouse agent list [--data DIR] [--json]

add     registers an agent identity in one environment (staging, production, …) and prints its
        token once; only the token's hash is kept. With --policy, the policy must name the agent
        in that environment. A staging identity can never open a production session.
rotate  replaces an agent's token (the old one stops working at once) and prints the new one.
`;

export const REVIEWER_HELP = `Usage:
  gatehouse reviewer add NAME [--data DIR] [--json]
  gatehouse reviewer rotate NAME [--data DIR] [--json]
  gatehouse reviewer remove NAME [--data DIR] [--json]
  gatehouse reviewer list [--data DIR] [--json]

Reviewers answer approvals on the page, the API or the CLI. add and rotate print a sign-in token
once (sign in at the gateway's page with it). Agents and reviewers share one namespace.
`;

export const SESSION_HELP = `Usage:
  gatehouse session list [--data DIR] [--json]
  gatehouse session show ID [--data DIR] [--json]
  gatehouse session halt ID --reason TEXT [--data DIR] [--json]
  gatehouse session resume ID --reason TEXT [--data DIR] [--json]

halt is the kill switch: every later action of the session is denied with the reason, its phantom
tokens are revoked and its pending approvals withdrawn. Gatehouse halts a session itself on a
stop-class error, a spent retry budget, the circuit breaker, a feedback loop, or a credential it
was not lent. resume lets a halted session act again (its tokens lent again, retry budgets counted
afresh). Both need a reviewer: set GATEHOUSE_REVIEWER_TOKEN.
`;

export const APPROVAL_HELP = `Usage:
  gatehouse approvals [--all] [--data DIR] [--json]
  gatehouse approve ID --reason TEXT [--data DIR] [--json]
  gatehouse reject ID --reason TEXT [--data DIR] [--json]

approvals lists pending approvals (--all: every one). approve and reject answer one as the
reviewer whose token is in GATEHOUSE_REVIEWER_TOKEN (\`gatehouse reviewer add NAME\` prints one);
a rule that needs two reviewers needs two reviewers' tokens. Nobody answers by name alone.
`;

const COMMON = { data: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function openStore(data: string | undefined, create = false): SqliteStore {
  return SqliteStore.open(resolve(data ?? '.gatehouse'), { create });
}

/** A gateway over the store for CLI use: the policy matters only for sessions, which the CLI does not open. */
function gatewayOn(store: SqliteStore): Gateway {
  return new Gateway(store, () => defaultPolicy(), '');
}

const localName = () => `local:${userInfo().username}`;

/**
 * The reviewer whose token is in `GATEHOUSE_REVIEWER_TOKEN`: answers and halts are made by an
 * authenticated reviewer, never by a name given on the command line.
 * @throws GatehouseError `usage` (no token set), `unauthorized` (not a reviewer of this store).
 */
function reviewerFromEnv(store: SqliteStore): string {
  const token = process.env.GATEHOUSE_REVIEWER_TOKEN;
  if (token === undefined || token === '') throw usage('set GATEHOUSE_REVIEWER_TOKEN to your reviewer token (`gatehouse reviewer add NAME` prints one)');
  const r = store.reviewerByTokenHash(tokenHash(token.trim()));
  if (r === undefined) throw new GatehouseError('unauthorized', 'GATEHOUSE_REVIEWER_TOKEN is not a reviewer token of this data directory');
  return r.name;
}

function print(io: Io, json: boolean | undefined, value: Record<string, unknown>, text: string): void {
  io.out(json ? JSON.stringify(value) + '\n' : text);
}

async function identities(kind: 'agent' | 'reviewer', argv: string[], io: Io): Promise<number> {
  const help = kind === 'agent' ? AGENT_HELP : REVIEWER_HELP;
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON, environment: { type: 'string' }, policy: { type: 'string' } } });
  const [sub, name, ...extra] = positionals;
  if (values.help || sub === undefined) {
    io.out(help);
    return sub === undefined && !values.help ? 2 : 0;
  }
  if (extra.length > 0) throw usage(`unexpected \`${extra[0]}\``);
  const table = kind === 'agent' ? 'agents' : 'reviewers';
  if (sub === 'list') {
    const store = openStore(values.data);
    try {
      const list = kind === 'agent' ? store.agents() : store.reviewers();
      print(io, values.json, { [table]: list }, list.length === 0 ? `no ${table}\n` : list.map((i) => `${i.name}${'environment' in i ? `  ${i.environment}` : ''}  since ${i.created}\n`).join(''));
      return 0;
    } finally {
      store.close();
    }
  }
  if (!['add', 'rotate', 'remove'].includes(sub)) throw usage(`unknown subcommand \`${sub}\`; expected add, rotate, remove or list`);
  if (name === undefined || !NAME.test(name)) throw usage(`name the ${kind}: letters, digits, \`.\`, \`_\`, \`-\`, at most 64`);
  const store = openStore(values.data, sub === 'add');
  try {
    const time = new Date().toISOString();
    if (sub === 'remove') {
      const removed = store.transaction(() => {
        const ok = store.removeIdentity(table, name);
        if (ok) store.audit.append({ time, type: `${kind}.removed`, [kind]: name, by: localName() });
        if (ok && kind === 'reviewer') store.deleteWebSessionsOf(name);
        return ok;
      });
      if (!removed) throw new GatehouseError('not_found', `no ${kind} \`${name}\``);
      const halted = kind === 'agent' ? await haltSessionsOf(store, name, 'the agent was removed') : [];
      print(io, values.json, { [kind]: name, removed: true, halted }, `removed ${kind} ${name}${halted.length ? `; halted ${halted.length} open session(s)` : ''}\n`);
      return 0;
    }
    const token = mintToken(kind);
    let environment: string | undefined;
    if (sub === 'add' && kind === 'agent') {
      environment = values.environment;
      if (environment === undefined || !/^[a-z0-9][a-z0-9_-]{0,31}$/.test(environment)) throw usage('give the agent its environment: --environment staging (lower case letters, digits, `_`, `-`)');
      if (values.policy !== undefined) {
        const named = loadPolicyFile(resolve(values.policy)).agents;
        const entry = named?.get(name);
        if (named !== null && entry === undefined) throw new GatehouseError('forbidden', `the policy ${values.policy} does not name the agent \`${name}\``);
        if (entry !== undefined && entry.environment !== environment) throw new GatehouseError('forbidden', `the policy puts \`${name}\` in ${entry.environment}, not ${environment}`);
      }
    }
    store.transaction(() => {
      if (sub === 'add') {
        if (kind === 'agent') store.addAgent(name, environment as string, tokenHash(token), time);
        else store.addReviewer(name, tokenHash(token), time);
      } else if (!store.rotateToken(table, name, tokenHash(token))) throw new GatehouseError('not_found', `no ${kind} \`${name}\``);
      // INVARIANT: a rotated reviewer's page sign-ins end with the old token
      if (sub === 'rotate' && kind === 'reviewer') store.deleteWebSessionsOf(name);
      store.audit.append({ time, type: sub === 'add' ? `${kind}.added` : `${kind}.rotated`, [kind]: name, environment, by: localName() });
    });
    // a rotated agent token may have leaked: what it opened ends with it
    const halted = sub === 'rotate' && kind === 'agent' ? await haltSessionsOf(store, name, 'the agent\'s token was rotated') : [];
    const out = { [kind]: name, environment, token, halted: kind === 'agent' && sub === 'rotate' ? halted : undefined };
    print(io, values.json, out, `${kind} ${name}${environment ? ` (${environment})` : ''} ${sub === 'add' ? 'added' : 'has a new token'}. Its token, shown once:\n${token}\n`);
    return 0;
  } finally {
    store.close();
  }
}

/** Halts an agent's active sessions (its identity was revoked); returns their ids. */
async function haltSessionsOf(store: SqliteStore, agent: string, reason: string): Promise<string[]> {
  const gw = gatewayOn(store);
  const ids = store.activeSessionsOf(agent).map((s) => s.id);
  for (const id of ids) await gw.haltSession(id, localName(), reason).catch(() => undefined);
  return ids;
}

/** `gatehouse agent …`. */
export async function agentCommand(argv: string[], io: Io): Promise<number> {
  try {
    return await identities('agent', argv, io);
  } catch (err) {
    return report(io, err, 'agent', argv.includes('--json'));
  }
}

/** `gatehouse reviewer …`. */
export async function reviewerCommand(argv: string[], io: Io): Promise<number> {
  try {
    return await identities('reviewer', argv, io);
  } catch (err) {
    return report(io, err, 'reviewer', argv.includes('--json'));
  }
}

/** `gatehouse session list|show|halt`. */
export async function sessionCommand(argv: string[], io: Io): Promise<number> {
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON, reason: { type: 'string' } } });
    const [sub, id] = positionals;
    if (values.help || sub === undefined) {
      io.out(SESSION_HELP);
      return sub === undefined && !values.help ? 2 : 0;
    }
    const store = openStore(values.data);
    try {
      const gw = gatewayOn(store);
      if (sub === 'list') {
        const list = store.sessions().map((s) => ({ ...s, state: gw.effectiveState(s) }));
        print(io, values.json, { sessions: list }, list.length === 0 ? 'no sessions\n' : list.map((s) => `${s.id}  ${s.state.padEnd(7)}  ${s.agent} (${s.environment})  ${s.task.slice(0, 60)}\n`).join(''));
        return 0;
      }
      if (id === undefined) throw usage(`name the session: gatehouse session ${sub} ID`);
      if (sub === 'show') {
        const s = store.session(id);
        if (s === undefined) throw new GatehouseError('not_found', `no session ${id}`);
        const history = store.audit.tail(200, id).reverse();
        print(io, values.json, { session: { ...s, state: gw.effectiveState(s) }, history }, `${s.id}  ${gw.effectiveState(s)}  ${s.agent} (${s.environment})\n  task: ${s.task}\n  expires: ${s.expires}\n${history.map((r) => `  ${r.time}  ${r.type}${r.verdict ? `  ${String(r.verdict)}` : ''}${r.rule ? `  ${(r.rule as { id: string }).id}` : ''}\n`).join('')}`);
        return 0;
      }
      if (sub !== 'halt' && sub !== 'resume') throw usage(`unknown subcommand \`${sub}\`; expected list, show, halt or resume`);
      if (values.reason === undefined) throw usage('give the reason: --reason TEXT');
      const s = sub === 'halt' ? await gw.haltSession(id, reviewerFromEnv(store), values.reason) : await gw.resumeSession(id, reviewerFromEnv(store), values.reason);
      print(io, values.json, { session: s }, `${sub === 'halt' ? 'halted' : 'resumed'} ${s.id} (${s.agent}): ${s.stateReason}\n`);
      return 0;
    } finally {
      store.close();
    }
  } catch (err) {
    return report(io, err, 'session', argv.includes('--json'));
  }
}

export const PINS_HELP = `Usage:
  gatehouse pins list [SERVER] [--agent NAME] [--data DIR] [--json]
  gatehouse pins accept SERVER TOOL --agent NAME --hash HASH [--data DIR] [--json]

MCP tool pins, per agent: the definition (name, description, input schema, annotations) of each
tool as first listed by that agent's sessions.
A tool whose definition changed is denied until a reviewer accepts the new one; accept needs
GATEHOUSE_REVIEWER_TOKEN and the hash of the definition reviewed, as list shows it (a server
that changes the tool again meanwhile needs a new review). list shows each pin and, for a changed
tool, the diff and its hash.
`;

/** \`gatehouse pins list|accept\`. */
export async function pinsCommand(argv: string[], io: Io): Promise<number> {
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON, hash: { type: 'string' }, agent: { type: 'string' } } });
    const [sub, server, tool] = positionals;
    if (values.help || sub === undefined) {
      io.out(PINS_HELP);
      return sub === undefined && !values.help ? 2 : 0;
    }
    const store = openStore(values.data);
    try {
      if (sub === 'list') {
        const pins = store.toolPins({ agent: values.agent, server });
        print(io, values.json, { pins }, pins.length === 0 ? 'no pinned tools\n' : pins.map((p) => `${p.agent}: ${p.server}/${p.tool}  ${p.status}  pinned ${p.pinned} by ${p.pinnedBy}\n${p.status === 'changed' ? `  changed to --hash ${p.changedHash}\n${toolDiff(p.server, p.definition, p.changedDefinition).replace(/^/gm, '    ')}` : ''}`).join(''));
        return 0;
      }
      if (sub !== 'accept') throw usage(`unknown subcommand \`${sub}\`; expected list or accept`);
      if (server === undefined || tool === undefined || values.agent === undefined || values.hash === undefined) throw usage('name the tool, its agent and the definition reviewed: gatehouse pins accept SERVER TOOL --agent NAME --hash HASH (pins list shows them)');
      acceptTool(store, values.agent, server, tool, values.hash, reviewerFromEnv(store), new Date().toISOString());
      print(io, values.json, { pin: store.toolPin(values.agent, server, tool) }, `${server}/${tool}: the new definition is pinned; its calls are judged again\n`);
      return 0;
    } finally {
      store.close();
    }
  } catch (err) {
    return report(io, err, 'pins', argv.includes('--json'));
  }
}

/** `gatehouse approvals`, `gatehouse approve ID`, `gatehouse reject ID`. */
export async function approvalCommand(command: 'approvals' | 'approve' | 'reject', argv: string[], io: Io): Promise<number> {
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...COMMON, reason: { type: 'string' }, all: { type: 'boolean' } } });
    if (values.help) {
      io.out(APPROVAL_HELP);
      return 0;
    }
    const store = openStore(values.data);
    try {
      const gw = gatewayOn(store);
      if (command === 'approvals') {
        await gw.expireDue();
        const list = store.approvals(values.all ? undefined : 'pending');
        print(io, values.json, { approvals: list }, list.length === 0 ? 'no pending approvals\n' : list.map((a) => {
          const s = store.session(a.session);
          const d = a.decision as { rule?: { id?: string } };
          return `${a.id}  ${a.status.padEnd(8)}  ${s?.agent} (${s?.environment})  rule ${d.rule?.id}  expires ${a.expires}\n    ${JSON.stringify(a.action).slice(0, 200)}\n`;
        }).join(''));
        return 0;
      }
      const [id, extra] = positionals;
      if (id === undefined) throw usage(`name the approval: gatehouse ${command} ID --reason TEXT`);
      if (extra !== undefined) throw usage(`unexpected \`${extra}\``);
      if (values.reason === undefined) throw usage('give the reason: --reason TEXT');
      const a = await gw.answer(id, reviewerFromEnv(store), command, values.reason, 'cli');
      print(io, values.json, { approval: a }, `${a.id} is ${a.status}${a.status === 'pending' ? ` (${a.votes.filter((v) => v.vote === 'approve').length} of ${a.required} approvals)` : ''}\n`);
      return 0;
    } finally {
      store.close();
    }
  } catch (err) {
    return report(io, err, command, argv.includes('--json'));
  }
}
