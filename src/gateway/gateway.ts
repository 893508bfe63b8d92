import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { Action, Part } from '../actions/action.js';
import { createsResources, magnitudes } from '../limits/signals.js';
import { readAction } from '../actions/input.js';
import { canonical, type AuditBody } from '../audit/chain.js';
import { isCredential, redactValue, type FoundSecret } from '../audit/redact.js';
import { decide, type Decision, type RuleRef } from '../engine/decide.js';
import { classify, UNCLASSIFIED } from '../errors/taxonomy.js';
import { GatehouseError } from '../gatehouse-error.js';
import type { CompiledCredential, CompiledPolicy } from '../policy/compile.js';
import type { Verdict } from '../policy/schema.js';
import { mintToken, newId, tokenHash, tokenKind, tokenMatches } from '../sessions/tokens.js';
import { toolRefusal } from './pins.js';
import type { ApprovalRecord, Identity, SessionRecord, SqliteStore } from '../store/sqlite/store.js';

/**
 * The pipeline of DESIGN.md for the gateway service: session → classify → decide → audit →
 * approval. Every state change commits in the same transaction as its audit record, and a decision
 * leaves only once its record is durable; when the store cannot write, the answer is a deny with
 * `store_unavailable` (the server turns it into 503).
 *
 * Errors are `GatehouseError`s with these codes: `unauthorized` (a token that is missing, unknown
 * or of the wrong kind — never which), `forbidden`, `not_found`, `input_invalid`, `conflict`,
 * `approval_expired`, `already_voted`, `store_unavailable`.
 */

/** Events for the page and for waiting agents. */
export interface GatewayEvents {
  approval: [ApprovalRecord];
  session: [SessionRecord];
  /** Something changed that this process did not do (a CLI command beside the gateway). */
  external: [];
  notification: [{ approval: string; status: string; error: string | null }];
  /** A session was halted (by a reviewer, or by Gatehouse on a stop): reviewers are alerted. */
  halted: [SessionRecord];
}

export interface SessionRequest {
  task: string;
  ttlSeconds?: number | undefined;
  environment?: string | undefined;
  workspace?: string | undefined;
  home?: string | undefined;
}

export interface OpenedSession {
  session: string;
  token: string;
  agent: string;
  environment: string;
  expires: string;
  ttlSeconds: number;
  /** The phantom tokens lent to this session, one per credential the policy lends the agent (shown once). */
  credentials: LentCredential[];
}

/** A phantom token as lent: it works only through the gateway's credential proxy, only in its session. */
export interface LentCredential {
  /** The policy's credential name. */
  name: string;
  /** `gatehouse_phantom_…` (256 random bits); only its SHA-256 is stored. */
  token: string;
  /** `tok_…`: how audit records name the token. */
  id: string;
  /** The variable `gatehouse run` puts the token in, when the policy names one. */
  env: string | null;
  /** The gateway's proxy for the credential: `{publicUrl}/proxy/{name}/`. */
  proxy: string;
  expires: string;
}

/**
 * A request the credential proxy is about to forward with a real credential, judged with its
 * action: scope and spend are checked in the decision's own transaction, and the spend is added
 * there when the verdict is allow (so concurrent requests can never pass a cap together).
 */
export interface CredentialUse {
  credential: CompiledCredential;
  tokenId: string;
  /** Null when the request is inside the credential's scope; else why not. */
  outOfScope: string | null;
  /** The request's amount in cents (0 when the body names none); null: it could not be read. */
  cents: number | null;
}

/** Rule of the deny (and halt) for a credential used in an action that was not lent to its session. */
const CREDENTIAL_NOT_ISSUED = 'gatehouse:credential-not-issued';

/** What an agent gets back for an action. */
export interface DecisionResult {
  decision: string;
  verdict: Verdict;
  rule: RuleRef;
  reasons: string[];
  /** Present when the verdict is ask, or when an approval turned an ask into allow. */
  approval?: { id: string; status: ApprovalRecord['status']; expires: string; url: string; wait: string };
}

const MAX_TASK = 4096;
/** Approvals one session may have waiting at once; more asks are denied until reviewers answer. */
export const MAX_PENDING_PER_SESSION = 20;
const MAX_REASON = 4096;
const ABSOLUTE = z.string().min(1).max(4096).refine((s) => s.startsWith('/'), 'must be an absolute path');

const sessionRequestSchema = z.strictObject({
  task: z.string().min(1, 'describe the task').max(MAX_TASK),
  ttlSeconds: z.number().int().min(1).max(365 * 86400).optional(),
  environment: z.string().min(1).max(32).optional(),
  workspace: ABSOLUTE.optional(),
  home: ABSOLUTE.optional(),
});

/** @throws GatehouseError `input_invalid` naming the first problems. */
function readSessionRequest(request: unknown): z.infer<typeof sessionRequestSchema> {
  const parsed = sessionRequestSchema.safeParse(request);
  if (!parsed.success) throw new GatehouseError('input_invalid', `the session request: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** Fields an action body may carry besides the action's own. */
const ACTION_FIELDS: Record<string, readonly string[]> = {
  shell: ['command', 'cwd', 'env'],
  sql: ['sql', 'dialect'],
  http: ['method', 'url', 'headers', 'body'],
  mcp_tool: ['server', 'tool', 'arguments', 'annotations', 'cwd'],
  file_read: ['path', 'cwd'],
  file_write: ['path', 'content', 'cwd'],
};
const ENVELOPE_FIELDS = ['kind', 'reason', 'id', 'observed', 'measure'];

/**
 * What an enforcement point that runs the action measured before deciding (sql_query's dry run):
 * each statement's command and the rows it touches. It can only raise the verdict (limits), and it
 * is part of what an approval is bound to: a different count needs a new approval.
 */
const observedSchema = z.strictObject({
  statements: z.array(z.strictObject({
    command: z.string().min(1).max(40),
    tables: z.array(z.string().max(200)).max(20).default([]),
    rows: z.number().int().min(0).nullable().describe('null: the rows could not be counted, which is past any limit'),
    note: z.string().max(500).optional().describe('why they could not be counted'),
  })).min(1).max(1000),
});
export type Observed = z.infer<typeof observedSchema>;

/** Defaults for a session that names no workspace or home. */
const DEFAULT_WORKSPACE = '/workspace';
const DEFAULT_HOME = '/home/agent';

/** Hex SHA-256 of an action's canonical JSON: what an approval is bound to. */
export function actionHash(action: Action): string {
  return createHash('sha256').update(canonical(action), 'utf8').digest('hex');
}

/**
 * Reads an action body: the action in the corpus format plus the agent's `reason` and an optional
 * `id` of its own. Unknown fields are refused, not ignored.
 * @throws GatehouseError `input_invalid` naming what is wrong.
 */
export function readActionBody(body: unknown): { action: Action; hash: string; reason: string | null; clientId: string | null; observed: Observed | null; measure: boolean } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new GatehouseError('input_invalid', 'the body must be a JSON object: an action with `kind`');
  const b = body as Record<string, unknown>;
  const fields = Object.hasOwn(ACTION_FIELDS, String(b.kind)) ? ACTION_FIELDS[String(b.kind)] : undefined;
  if (fields !== undefined) {
    const unknown = Object.keys(b).filter((k) => !fields.includes(k) && !ENVELOPE_FIELDS.includes(k));
    if (unknown.length > 0) throw new GatehouseError('input_invalid', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `\`${k.slice(0, 40)}\``).join(', ')} for a ${String(b.kind)} action (allowed: ${[...fields, 'reason', 'id'].join(', ')})`, { fields: unknown });
  }
  if (b.reason !== undefined && (typeof b.reason !== 'string' || b.reason.length > MAX_REASON)) throw new GatehouseError('input_invalid', `\`reason\` must be a string of at most ${MAX_REASON} characters`);
  if (b.id !== undefined && (typeof b.id !== 'string' || b.id.length > 200)) throw new GatehouseError('input_invalid', '`id` must be a string of at most 200 characters');
  if (b.measure !== undefined && typeof b.measure !== 'boolean') throw new GatehouseError('input_invalid', '`measure` must be true or false');
  const { reason, id, observed: rawObserved, measure, ...rest } = b;
  const read = readAction(rest);
  if (!read.ok) throw new GatehouseError('input_invalid', read.reason);
  let observed: Observed | null = null;
  if (rawObserved !== undefined) {
    const o = observedSchema.safeParse(rawObserved);
    if (!o.success) throw new GatehouseError('input_invalid', `\`observed\`: ${o.error.issues[0]?.path.join('.') ?? ''} ${o.error.issues[0]?.message ?? ''}`);
    observed = o.data;
  }
  let hash: string;
  try {
    hash = observed === null ? actionHash(read.action) : createHash('sha256').update(canonical({ action: read.action, observed }), 'utf8').digest('hex');
  } catch (err) {
    throw new GatehouseError('input_invalid', `the action has no canonical form: ${(err as Error).message}`);
  }
  return { action: read.action, hash, reason: (reason as string | undefined) ?? null, clientId: (id as string | undefined) ?? null, observed, measure: measure === true };
}

export class Gateway extends EventEmitter<GatewayEvents> {
  private lastCheckpointSeq = 0;

  /**
   * @param store the data directory's store.
   * @param policy returns the policy in force (it changes on reload).
   * @param publicUrl the gateway's address for links, e.g. `http://127.0.0.1:7800`.
   * @param now the clock (tests move it).
   */
  constructor(
    readonly store: SqliteStore,
    private readonly policy: () => CompiledPolicy,
    public publicUrl: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    super();
    this.setMaxListeners(0);
  }

  // ── sessions ────────────────────────────────────────────────────────────────────────────────

  /**
   * Opens a session for the agent holding `agentToken`.
   * @throws GatehouseError `unauthorized`, `forbidden` (an environment the agent is not in, an agent
   *         the policy does not name), `input_invalid`, `store_unavailable`.
   */
  async openSession(agentToken: string | undefined, request: unknown): Promise<OpenedSession> {
    const agent = this.agentByToken(agentToken);
    const req = readSessionRequest(request);
    const policy = this.policy();
    const time = this.now();
    const refuse = async (message: string): Promise<never> => {
      await this.store.batched(() => this.store.audit.append({ time: time.toISOString(), type: 'session.refused', agent: agent.name, environment: agent.environment, requested: req.environment ?? null, reasons: [message] }));
      throw new GatehouseError('forbidden', message);
    };
    const named = policy.agents?.get(agent.name);
    if (policy.agents !== null && named === undefined) await refuse(`the policy does not name the agent \`${agent.name}\``);
    if (named !== undefined && named.environment !== agent.environment) await refuse(`the agent \`${agent.name}\` is registered for ${agent.environment}, but the policy puts it in ${named.environment}`);
    if (req.environment !== undefined && req.environment !== agent.environment) await refuse(`the agent \`${agent.name}\` is a ${agent.environment} identity: it cannot open a ${req.environment} session`);
    return this.createSession(agent, req, 'token');
  }

  /**
   * Opens a session for an enforcement point that runs with the data directory's trust (a local
   * \`gatehouse mcp\` without a gateway): no agent token, the agent and environment as given.
   * @throws GatehouseError \`input_invalid\`, \`store_unavailable\`.
   */
  async openLocalSession(agent: string, environment: string, request: SessionRequest): Promise<OpenedSession> {
    return this.createSession({ name: agent, environment, created: this.now().toISOString() }, readSessionRequest(request), 'local');
  }

  private async createSession(agent: Identity, req: z.infer<typeof sessionRequestSchema>, via: 'token' | 'local'): Promise<OpenedSession> {
    const policy = this.policy();
    const time = this.now();
    const ttlSeconds = Math.min(req.ttlSeconds ?? policy.maxSessionSeconds, policy.maxSessionSeconds);
    const token = mintToken('session');
    const session = {
      id: newId('ses'), agent: agent.name, environment: agent.environment, task: req.task,
      workspace: req.workspace ?? DEFAULT_WORKSPACE, home: req.home ?? DEFAULT_HOME,
      created: time.toISOString(), expires: new Date(time.getTime() + ttlSeconds * 1000).toISOString(), tokenHash: tokenHash(token),
    };
    const task = await redactValue(req.task);
    // phantom tokens only for sessions opened with an agent token: a local enforcement point has no credential proxy
    const granted = via === 'token' ? [...policy.credentials.values()].filter((c) => c.lentTo(agent.name)) : [];
    const lent = await this.store.batched(() => {
      this.store.insertSession({ ...session, task });
      const out: LentCredential[] = [];
      const missing: string[] = [];
      for (const c of granted) {
        if (this.store.sealedSecret(c.secret) === undefined) {
          missing.push(c.name);
          continue;
        }
        const t = { name: c.name, token: mintToken('phantom'), id: newId('tok'), env: c.env ?? null, proxy: `${this.publicUrl}/proxy/${c.name}/`, expires: session.expires };
        this.store.insertPhantomToken({ id: t.id, tokenHash: tokenHash(t.token), session: session.id, credential: c.name, expires: session.expires });
        out.push(t);
      }
      this.store.audit.append({
        time: session.created, type: 'session.opened', session: session.id, agent: agent.name, environment: agent.environment, task, expires: session.expires, ttlSeconds, workspace: session.workspace, via,
        credentials: out.map((t) => ({ name: t.name, token: t.id })), ...(missing.length > 0 ? { credentialsMissing: missing, reasons: [`not lent (no secret stored): ${missing.join(', ')}`] } : {}),
      });
      return out;
    });
    const record = this.store.session(session.id);
    if (record) this.emit('session', record);
    return { session: session.id, token, agent: agent.name, environment: agent.environment, expires: session.expires, ttlSeconds, credentials: lent };
  }

  /** The agent holding a token. @throws GatehouseError `unauthorized`. */
  agentByToken(token: string | undefined): Identity {
    const agent = token !== undefined && tokenKind(token) === 'agent' ? this.store.agentByTokenHash(tokenHash(token)) : undefined;
    if (agent === undefined) throw unauthorized();
    return agent;
  }

  /**
   * The session a session token opens.
   * @throws GatehouseError `unauthorized` for a missing or wrong token, or an unknown session.
   */
  authenticateSession(sessionId: string, token: string | undefined): SessionRecord {
    const found = token !== undefined && tokenKind(token) === 'session' ? this.store.sessionWithTokenHash(sessionId) : undefined;
    if (found === undefined || token === undefined || !tokenMatches(token, found.tokenHash)) throw unauthorized();
    return found.session;
  }

  /** A session's state as it stands at `now` (an active session past its expiry is expired). */
  effectiveState(s: SessionRecord, now = this.now()): SessionRecord['state'] {
    return s.state === 'active' && s.expires <= now.toISOString() ? 'expired' : s.state;
  }

  /**
   * Judges an action in a session: the decision, durable in the audit trail before it returns.
   * An ask creates (or finds) the approval bound to this exact action; an action a reviewer has
   * approved is allowed once.
   * @param session an authenticated session ({@link authenticateSession}).
   * @param body the action in the corpus format plus `reason` (see {@link readActionBody}).
   * @throws GatehouseError `input_invalid`, `store_unavailable` (the caller denies).
   */
  async act(session: SessionRecord, body: unknown, use?: CredentialUse): Promise<DecisionResult> {
    const { action, hash, reason, clientId, observed, measure } = readActionBody(body);
    const time = this.now();
    const policy = this.policy();
    const changed = action.kind === 'mcp_tool' ? toolRefusal(this.store, session.agent, action.server, action.tool) : null;
    const deny = (id: string, why: string): Decision => ({ verdict: 'deny', rule: { id, file: null, line: null }, reasons: [why], parts: [] });
    const refused = this.refusal(session, policy, time);
    const judged = refused
      ?? (changed === null ? null : deny('gatehouse:tool-changed', changed))
      ?? (use?.outOfScope == null ? null : deny('gatehouse:credential-scope', use.outOfScope))
      ?? (use !== undefined && use.cents === null ? deny('gatehouse:spend-unreadable', `the request's \`${use.credential.spend?.field}\` is not an amount with at most two decimals; a spend cap cannot be checked, so it is not sent`) : null)
      ?? decide(policy, action, { cwd: session.workspace, home: session.home });
    const limited = observed === null ? judged : withLimits(judged, observed, policy, this.store.rowsTouched(session.id));
    const id = newId('dec');
    const found: FoundSecret[] = [];
    const summary = await redactValue({
      action,
      reasons: limited.reasons,
      agentReason: reason,
      clientId,
      parts: limited.parts.map((p) => ({ kind: p.part.kind, origin: p.part.origin, verdict: p.verdict, rule: p.rule.id, reasons: p.reasons })),
    }, found);
    // INVARIANT: a credential in an action that is not one this session was lent is a deny and a halt, whatever the policy says
    const foreign = refused === null ? this.foreignCredential(session, found) : null;
    const decision = foreign === null ? limited : deny(CREDENTIAL_NOT_ISSUED, `used a credential not issued to this session (${foreign}); the session is halted`);
    if (foreign !== null) summary.reasons = decision.reasons;
    const required = Math.max(1, ...decision.parts.filter((p) => p.verdict === 'ask').map((p) => policy.rules.find((r) => r.id === p.rule.id)?.reviewers ?? 1));
    const iso = time.toISOString();
    const outcome = await this.store.batched(() => {
      // INVARIANT: the session is judged again inside the transaction, so a halt, close or expiry that committed while this request was being decided wins
      const late = decision.rule.id.startsWith('gatehouse:session-') ? null : this.refusal(this.store.session(session.id) as SessionRecord, policy, time);
      let verdict = late?.verdict ?? decision.verdict;
      let rule = late?.rule ?? decision.rule;
      const reasons = late?.reasons ?? summary.reasons;
      let halt = rule.id === CREDENTIAL_NOT_ISSUED && late === null ? (reasons[0] as string) : null;
      // spend caps and the other blast-radius limits: read and raised here, in the transaction that records the decision, so concurrent requests see each other
      // every limit is read; the strictest one applies (a halt or a deny over an ask)
      const limits = late !== null || verdict === 'deny' ? []
        : [use === undefined ? null : spendCheck(this.store, use, session.id, time), this.blastRadius(session, policy, hash, action, limited.parts.map((p) => p.part), time)].filter((r): r is Raised => r !== null);
      const raised = limits.find((r) => r.halt) ?? limits.find((r) => r.verdict === 'deny') ?? limits[0] ?? null;
      if (raised !== null) {
        reasons.push(raised.reason);
        if (raised.verdict === 'deny' || verdict === 'allow') {
          verdict = raised.verdict;
          rule = { id: raised.rule, file: policy.file, line: null };
        }
        if (raised.halt) halt = raised.reason;
      }
      let approval: Pick<ApprovalRecord, 'id' | 'status' | 'expires' | 'required'> | undefined;
      let createdApproval: ApprovalRecord | undefined;
      let reviewers: string[] | undefined;
      if (verdict === 'ask') {
        approval = this.store.boundApproval(session.id, hash, iso);
        if (approval?.status === 'approved') {
          // INVARIANT: an approval is used only when enough distinct registered reviewers approved it, whatever its status column says
          reviewers = this.store.approvingReviewers(approval.id);
          if (reviewers.length >= Math.max(approval.required, required) && this.store.moveApproval(approval.id, 'approved', 'used', iso, `used by ${id}`)) {
            verdict = 'allow';
            approval = { ...approval, status: 'used' };
          } else reviewers = undefined;
        } else if (approval === undefined && measure) {
          // the enforcement point measures first (a dry run) and asks again with what it observed: the approval is made then
          reasons.push('the rows it touches are being counted before a reviewer is asked');
        } else if (approval === undefined) {
          if (this.store.pendingCount(session.id) >= MAX_PENDING_PER_SESSION) {
            verdict = 'deny';
            reasons.push(`the session already has ${MAX_PENDING_PER_SESSION} approvals waiting; wait for answers before asking for more`);
          } else {
            const expires = new Date(time.getTime() + policy.approvalSeconds * 1000).toISOString();
            createdApproval = { id: newId('apr'), session: session.id, actionHash: hash, decisionId: id, action: summary.action, decision: { verdict: decision.verdict, rule, reasons, parts: summary.parts }, reason: summary.agentReason, required, status: 'pending', created: iso, expires, resolved: null, resolution: null, votes: [] };
            this.store.insertApproval(createdApproval);
            approval = createdApproval;
          }
        }
      }
      if (verdict === 'allow' && use !== undefined && use.cents !== null && use.cents > 0 && use.credential.spend !== null) this.store.addSpend(use.credential.name, session.id, iso, use.cents, id);
      // INVARIANT: only actions let through (or held) count toward the rates, so a window never holds more rows than its cap: the counts stay cheap under a flood of denied ones
      if (late === null && verdict !== 'deny') {
        const parts = limited.parts.map((p) => p.part);
        this.store.logAction(session.id, session.agent, iso, verdict === 'allow' && createsResources(action, parts));
        if (verdict === 'allow') for (const m of magnitudes(action, parts)) this.store.logSize(session.id, m.target, m.value, iso);
      }
      const records: AuditBody[] = [{
        time: iso, type: 'decision', decision: id, session: session.id, agent: session.agent, environment: session.environment,
        action: summary.action, actionHash: hash, verdict, rule, reasons, agentReason: summary.agentReason,
        clientId: summary.clientId ?? undefined, credentials: use === undefined ? [] : [{ name: use.credential.name, secret: use.credential.secret, token: use.tokenId, ...(use.cents !== null && use.credential.spend !== null ? { cents: use.cents } : {}) }],
        approval: approval?.id, reviewers,
      }];
      if (createdApproval) records.push({ time: iso, type: 'approval.created', approval: createdApproval.id, decision: id, session: session.id, agent: session.agent, environment: session.environment, actionHash: hash, rule, required, expires: createdApproval.expires });
      this.store.audit.append(...records);
      if (halt !== null) this.haltInTransaction(session.id, halt, 'gatehouse', iso);
      return { verdict, rule, reasons, approval, created: createdApproval, halted: halt !== null };
    });
    if (outcome.created) this.emit('approval', outcome.created);
    if (outcome.halted) this.announceHalt(session.id);
    const result: DecisionResult = { decision: id, verdict: outcome.verdict, rule: outcome.rule, reasons: outcome.reasons };
    if (outcome.approval) result.approval = this.approvalLink(outcome.approval);
    return result;
  }

  /**
   * The blast-radius limits and retry terms for one action, read inside the decision's transaction
   * (so concurrent requests count each other): backoff and approval after a recover-class failure
   * of the same action, actions per minute (session and agent), resources created per session, and
   * feedback loops (a size set to `maxStepFactor`× the last one asks; `escalations` increases in a
   * row halt the session). Null when none applies.
   */
  private blastRadius(session: SessionRecord, policy: CompiledPolicy, hash: string, action: Action, parts: Part[], time: Date): Raised | null {
    const limits = policy.limits;
    const iso = time.toISOString();
    const since = (seconds: number) => new Date(time.getTime() - seconds * 1000).toISOString();
    const failures = this.store.failuresOf(session.id, hash, session.resumed ?? '');
    if (failures.last !== null) {
      const wait = failures.last.backoffSeconds * 2 ** (failures.count - 1);
      const ready = new Date(new Date(failures.last.time).getTime() + wait * 1000).toISOString();
      if (ready > iso) return { verdict: 'deny', rule: 'gatehouse:retry-backoff', reason: `this action failed ${failures.count} time${failures.count > 1 ? 's' : ''} (${failures.last.class}); wait until ${ready} (${Math.ceil((new Date(ready).getTime() - time.getTime()) / 1000)} s) before trying it again` };
      if (failures.last.approval) return { verdict: 'ask', rule: 'gatehouse:retry-approval', reason: `this action failed with ${failures.last.class}, and retrying it needs a reviewer's approval` };
    }
    const recent = this.store.actionsInMinute(session.id, session.agent, iso);
    if (recent.session >= limits.actionsPerMinute.session) return { verdict: limits.onLimit, rule: 'gatehouse:limit-rate', reason: `the session sent ${recent.session} actions in the last minute; the limit is ${limits.actionsPerMinute.session}` };
    if (recent.agent >= limits.actionsPerMinute.agent) return { verdict: limits.onLimit, rule: 'gatehouse:limit-rate', reason: `the agent ${session.agent} sent ${recent.agent} actions in the last minute; the limit is ${limits.actionsPerMinute.agent}` };
    if (createsResources(action, parts)) {
      const made = this.store.resourcesCreated(session.id);
      if (made >= limits.resourcesPerSession) return { verdict: limits.onLimit, rule: 'gatehouse:limit-resources', reason: `the session has created resources ${made} times; the limit is ${limits.resourcesPerSession} per session` };
    }
    for (const m of magnitudes(action, parts)) {
      const before = this.store.sizesSince(session.id, m.target, since(limits.scaling.windowSeconds));
      const sizes = [...before, m.value];
      let rising = 0;
      for (let i = sizes.length - 1; i > 0 && (sizes[i] as number) > (sizes[i - 1] as number); i--) rising++;
      const story = sizes.slice(-(rising + 1)).join(' → ');
      if (rising >= limits.scaling.escalations) return { verdict: 'deny', rule: 'gatehouse:limit-feedback-loop', halt: true, reason: `a feedback loop: ${m.target} ${m.via} went ${story} within ${limits.scaling.windowSeconds} s; the session is halted` };
      const last = before.at(-1);
      if (last !== undefined && m.value > last && m.value >= last * limits.scaling.maxStepFactor) return { verdict: 'ask', rule: 'gatehouse:limit-scale-step', reason: `${m.target} ${m.via} ${last} → ${m.value} is ${(m.value / Math.max(last, 1)).toFixed(1)}× the last value set; a step of ${limits.scaling.maxStepFactor}× or more needs a reviewer` };
    }
    return null;
  }

  /** A deny for a session that may not act now (ended, expired, or an agent the policy no longer admits); null when it may. */
  private refusal(s: SessionRecord, policy: CompiledPolicy, time: Date): Decision | null {
    const state = this.effectiveState(s, time);
    const deny = (id: string, reason: string): Decision => ({ verdict: 'deny', rule: { id, file: null, line: null }, reasons: [reason], parts: [] });
    if (state !== 'active') {
      const why = state === 'expired' ? `the session expired at ${s.expires}` : `the session is ${state}${s.stateReason ? `: ${s.stateReason}` : ''}`;
      // a halt is a stop: the agent is told the task is over, not how to get around it
      return deny(`gatehouse:session-${state}`, state === 'halted' ? `${why}. The task is over: do not retry or work around it; only a reviewer can resume this session` : `${why}; start a new session`);
    }
    const named = policy.agents?.get(s.agent);
    if (policy.agents !== null && named?.environment !== s.environment) return deny('gatehouse:agent-not-admitted', `the policy in force does not admit the agent \`${s.agent}\` in ${s.environment}`);
    return null;
  }

  approvalLink(a: Pick<ApprovalRecord, 'id' | 'status' | 'expires'>): NonNullable<DecisionResult['approval']> {
    return { id: a.id, status: a.status, expires: a.expires, url: `${this.publicUrl}/#/approvals/${a.id}`, wait: `/v1/approvals/${a.id}/wait` };
  }

  /**
   * Records what happened when an action ran (the enforcement point reports it).
   * @throws GatehouseError `unauthorized`, `input_invalid`, `not_found` (no such decision in the session), `store_unavailable`.
   */
  async reportOutcome(sessionId: string, token: string | undefined, body: unknown): Promise<OutcomeResult> {
    return this.recordOutcome(this.authenticateSession(sessionId, token), body);
  }

  /**
   * {@link reportOutcome} for an authenticated session. A failure is classified by the policy's
   * error taxonomy; a stop — a stop class, an unclassified error, a recover class past its retry
   * budget for this action, or the session's failure rate past the breaker — halts the session in
   * the same transaction as the outcome's record (tokens revoked, reviewers alerted).
   */
  async recordOutcome(session: SessionRecord, body: unknown): Promise<OutcomeResult> {
    const parsed = outcomeSchema.safeParse(body);
    if (!parsed.success) throw new GatehouseError('input_invalid', `the outcome: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const hash = this.store.decisionHash(session.id, parsed.data.decision);
    if (hash === undefined) throw new GatehouseError('not_found', `no decision ${parsed.data.decision} in this session`);
    // INVARIANT: `error` is the only free text (the decision id was just found in the trail): only it needs a redaction pass
    const o = parsed.data.error === undefined ? parsed.data : await redactValue(parsed.data);
    const policy = this.policy();
    // classified on what the enforcement point reported, before redaction masked any of it
    const c = classify(policy.errors, parsed.data);
    const time = this.now();
    const iso = time.toISOString();
    const result = await this.store.batched(() => {
      if (o.status === 'ok' && o.rows !== undefined) this.store.addRowsTouched(session.id, o.rows);
      const current = this.store.session(session.id) as SessionRecord;
      const since = current.resumed ?? '';
      this.store.logOutcome({ session: session.id, actionHash: hash, time: iso, failed: c !== null, class: c?.id ?? null, stop: c?.action === 'stop', backoffSeconds: c?.backoffSeconds ?? 0, approval: c?.approval ?? false });
      let stop: string | null = null;
      if (c !== null) {
        const failures = this.store.failuresOf(session.id, hash, since).count;
        const breaker = policy.limits.breaker;
        // the window starts at the breaker's length ago, or at the last resume if that is later (ISO times compare as strings)
        const windowStart = new Date(time.getTime() - breaker.windowSeconds * 1000).toISOString();
        const window = this.store.outcomesSince(session.id, windowStart > since ? windowStart : since);
        const first = (o.error ?? '').split('\n').find((l) => l.trim() !== '')?.slice(0, 300);
        const what = `${c.id}${first ? ` (${first})` : ''}`;
        if (c.action === 'stop') stop = c.id === UNCLASSIFIED ? `an error that matches no class of the taxonomy, so it is a stop: ${what}` : `a stop-class error: ${what}`;
        else if (failures > c.budget) stop = `the retry budget is spent: this action failed ${failures} times (${c.id}; the budget is ${c.budget})`;
        else if (window.failed >= breaker.minFailures && window.failed / window.total > breaker.maxFailureRate) stop = `the circuit breaker tripped: ${window.failed} of the session's last ${window.total} outcomes failed within ${breaker.windowSeconds} s`;
      }
      const active = this.effectiveState(current, time) === 'active';
      const [record] = this.store.audit.append({
        time: iso, type: 'outcome', session: session.id, agent: session.agent, environment: session.environment, ...o, actionHash: hash,
        ...(c === null ? {} : { class: c.id, classAction: c.action, matched: c.matched }), ...(stop !== null && active ? { reasons: [stop] } : {}),
      });
      if (stop !== null && active) this.haltInTransaction(session.id, stop, 'gatehouse', iso);
      return { recorded: record?.seq ?? 0, halted: stop !== null && active, stop };
    }, { sync: c === null && o.rows === undefined ? false : true });
    if (result.halted) this.announceHalt(session.id);
    return {
      recorded: result.recorded,
      class: c?.id ?? null,
      action: c === null ? 'ok' : result.stop !== null ? 'stop' : 'recover',
      ...(result.halted ? { halted: true, message: `STOP. Gatehouse halted this session: ${result.stop}. The task is over: do not retry, and do not look for other credentials or another way around it. A reviewer has been alerted and only a reviewer can resume the session.` } : {}),
      ...(c?.action === 'recover' && result.stop === null ? { message: `${c.id}: you may retry this action after ${c.backoffSeconds} s${c.approval ? ', with a reviewer\'s approval' : ''}; ${c.budget} failure${c.budget === 1 ? '' : 's'} of the same action are allowed` } : {}),
    };
  }

  /**
   * A reviewer resumes a halted session: it may act again until it expires, its phantom tokens are
   * lent again, and retry budgets count afresh.
   * @throws GatehouseError `not_found`, `conflict` (not halted, or expired), `input_invalid`, `store_unavailable`.
   */
  async resumeSession(sessionId: string, reviewer: string, reason: string): Promise<SessionRecord> {
    if (reason.trim() === '') throw new GatehouseError('input_invalid', 'give a reason to resume');
    const text = (await redactValue(reason)).slice(0, MAX_REASON);
    const iso = this.now().toISOString();
    await this.store.batched(() => {
      const s = this.store.session(sessionId);
      if (s === undefined) throw new GatehouseError('not_found', `no session ${sessionId}`);
      if (s.state !== 'halted') throw new GatehouseError('conflict', `the session ${sessionId} is ${this.effectiveState(s)}, not halted`, { state: this.effectiveState(s) });
      if (s.expires <= iso) throw new GatehouseError('conflict', `the session ${sessionId} expired at ${s.expires}; start a new one`, { state: 'expired' });
      const restored = s.stateTime === null ? [] : this.store.restorePhantomTokens(sessionId, s.stateTime);
      this.store.resumeSession(sessionId, `resumed: ${text}`, reviewer, iso);
      this.store.audit.append({ time: iso, type: 'session.resumed', session: sessionId, agent: s.agent, environment: s.environment, by: reviewer, reasons: [text], halted: s.stateReason, ...(restored.length > 0 ? { restoredTokens: restored } : {}) });
    });
    const s = this.store.session(sessionId) as SessionRecord;
    this.emit('session', s);
    return s;
  }

  /**
   * Closes a session at the agent's request; its pending approvals are withdrawn.
   * @throws GatehouseError `unauthorized`, `conflict` (not active), `store_unavailable`.
   */
  async closeSession(sessionId: string, token: string | undefined): Promise<SessionRecord> {
    const session = this.authenticateSession(sessionId, token);
    return this.endSession(session.id, 'closed', 'closed by the agent', session.agent);
  }

  /**
   * Halts a session (the kill switch): every later action is denied with `reason`.
   * @throws GatehouseError `not_found`, `conflict` (not active), `input_invalid`, `store_unavailable`.
   */
  async haltSession(sessionId: string, reviewer: string, reason: string): Promise<SessionRecord> {
    if (reason.trim() === '') throw new GatehouseError('input_invalid', 'give a reason for the halt');
    if (this.store.session(sessionId) === undefined) throw new GatehouseError('not_found', `no session ${sessionId}`);
    return this.endSession(sessionId, 'halted', (await redactValue(reason)).slice(0, MAX_REASON), reviewer);
  }

  /**
   * The session's own side halts it (`gatehouse run` when the agent process was killed): like a
   * reviewer's halt, only a reviewer can look at it afterwards; the agent cannot go on.
   * @throws GatehouseError `unauthorized`, `conflict` (not active), `input_invalid`, `store_unavailable`.
   */
  async haltOwnSession(sessionId: string, token: string | undefined, reason: string): Promise<SessionRecord> {
    const session = this.authenticateSession(sessionId, token);
    if (reason.trim() === '') throw new GatehouseError('input_invalid', 'give a reason for the halt');
    return this.endSession(session.id, 'halted', (await redactValue(reason)).slice(0, MAX_REASON), session.agent);
  }

  private async endSession(id: string, state: 'halted' | 'closed', reason: string, by: string): Promise<SessionRecord> {
    const iso = this.now().toISOString();
    const withdrawn = await this.store.batched(() => this.endInTransaction(id, state, reason, by, iso));
    const s = this.store.session(id) as SessionRecord;
    this.emit('session', s);
    if (state === 'halted') this.emit('halted', s);
    for (const a of withdrawn) this.emit('approval', this.store.approval(a) as ApprovalRecord);
    return s;
  }

  /** Tells the page (and waiters) and the webhook that Gatehouse halted a session. */
  private announceHalt(id: string): void {
    const halted = this.store.session(id) as SessionRecord;
    this.emit('session', halted);
    this.emit('halted', halted);
  }

  /** Halts a session from inside a transaction that is already open (a stop found while deciding). */
  private haltInTransaction(id: string, reason: string, by: string, iso: string): void {
    this.endInTransaction(id, 'halted', reason, by, iso);
  }

  /**
   * Ends a session inside the caller's transaction: its phantom tokens are revoked and its pending
   * approvals withdrawn, each with its record. Returns the approvals withdrawn.
   * @throws GatehouseError `conflict` when the session is not active.
   */
  private endInTransaction(id: string, state: 'halted' | 'closed', reason: string, by: string, iso: string): string[] {
    const s = this.store.session(id) as SessionRecord;
    if (this.effectiveState(s) !== 'active' || !this.store.endSession(id, state, reason, by, iso)) throw new GatehouseError('conflict', `the session ${id} is already ${this.effectiveState(s)}`, { state: this.effectiveState(s) });
    const revoked = this.store.revokePhantomTokens(id, iso);
    const records: AuditBody[] = [{ time: iso, type: `session.${state}`, session: id, agent: s.agent, environment: s.environment, by, reasons: [reason], ...(revoked.length > 0 ? { revokedTokens: revoked } : {}) }];
    const open = this.store.openApprovals(id);
    for (const a of open) {
      this.store.moveApproval(a.id, a.status, 'rejected', iso, `the session was ${state}`);
      records.push({ time: iso, type: 'approval.withdrawn', approval: a.id, session: id, agent: s.agent, environment: s.environment, reasons: [`the session was ${state}`] });
    }
    this.store.audit.append(...records);
    return open.map((a) => a.id);
  }

  /**
   * The kind of the first credential in an action that this session was not lent, or null. The
   * session's own phantom tokens and its own session token are its own; anything else that looks
   * like a credential (secretlint's rules and Gatehouse's patterns; not the weak `password=` guesses)
   * is not.
   */
  private foreignCredential(session: SessionRecord, found: FoundSecret[]): string | null {
    const used = found.filter(isCredential);
    if (used.length === 0) return null;
    const own = new Set(this.store.phantomTokensOf(session.id).map((t) => t.tokenHash));
    own.add((this.store.sessionWithTokenHash(session.id) as { tokenHash: string }).tokenHash);
    const token = (f: FoundSecret) => /gatehouse_(agent|session|reviewer|phantom)_[A-Za-z0-9_-]{43}/.exec(f.text);
    const ownTexts = used.filter((f) => {
      const m = token(f);
      return m !== null && own.has(tokenHash(m[0]));
    }).map((f) => f.text);
    for (const f of used) {
      // explanations quote the action clipped: a piece of one of the session's own tokens is that token
      if (ownTexts.some((t) => t.includes(f.text))) continue;
      const m = token(f);
      return m === null ? f.kind : `a Gatehouse ${m[1]} token`;
    }
    return null;
  }

  // ── approvals ───────────────────────────────────────────────────────────────────────────────

  /**
   * The agent withdraws its own pending approval (it no longer wants the action: a cancelled call).
   * @throws GatehouseError `not_found` (no such approval in this session), `conflict` (not pending), `store_unavailable`.
   */
  async withdraw(session: SessionRecord, approvalId: string): Promise<ApprovalRecord> {
    const iso = this.now().toISOString();
    const withdrawn = await this.store.batched(() => {
      const a = this.store.approval(approvalId);
      if (a === undefined || a.session !== session.id) throw new GatehouseError('not_found', `no approval ${approvalId} in this session`);
      if (!this.store.moveApproval(a.id, 'pending', 'rejected', iso, 'withdrawn by the agent')) throw new GatehouseError('conflict', `the approval ${a.id} is already ${a.status}`, { status: a.status });
      this.store.audit.append({ time: iso, type: 'approval.withdrawn', approval: a.id, session: session.id, agent: session.agent, environment: session.environment, reasons: ['withdrawn by the agent'] });
      return this.store.approval(a.id) as ApprovalRecord;
    });
    this.emit('approval', withdrawn);
    return withdrawn;
  }

  /**
   * A reviewer's answer. Approval needs the rule's number of distinct reviewers; one rejection
   * rejects. Of two answers racing, exactly one settles the approval; the other gets `conflict`.
   * @param via where the answer came from: `page`, `api` or `cli` (recorded).
   * @throws GatehouseError `not_found`, `forbidden` (the requesting agent), `conflict` (no longer
   *         pending), `approval_expired`, `already_voted`, `input_invalid`, `store_unavailable`.
   */
  async answer(approvalId: string, reviewer: string, vote: 'approve' | 'reject', reason: string, via: string): Promise<ApprovalRecord> {
    if (typeof reason !== 'string' || reason.trim() === '') throw new GatehouseError('input_invalid', `give a reason to ${vote}`);
    const iso = this.now().toISOString();
    const text = (await redactValue(reason)).slice(0, MAX_REASON);
    let expired = false;
    const settled = await this.store.batched(() => {
      const a = this.store.approval(approvalId);
      if (a === undefined) throw new GatehouseError('not_found', `no approval ${approvalId}`);
      const s = this.store.session(a.session) as SessionRecord;
      if (reviewer === s.agent) throw new GatehouseError('forbidden', 'the agent that asked cannot answer its own approval');
      if (a.status !== 'pending') throw new GatehouseError('conflict', `the approval ${a.id} is already ${a.status}${a.resolution ? ` (${a.resolution})` : ''}`, { status: a.status, resolution: a.resolution });
      if (a.expires <= iso) {
        expired = true;
        return null;
      }
      this.store.addVote(a.id, { reviewer, vote, reason: text, time: iso });
      const base = { time: iso, approval: a.id, session: a.session, agent: s.agent, environment: s.environment, decision: a.decisionId, reviewer, via, reasons: [text] };
      const approvals = a.votes.filter((v) => v.vote === 'approve').length + (vote === 'approve' ? 1 : 0);
      if (vote === 'reject' || approvals >= a.required) {
        const to = vote === 'reject' ? 'rejected' : 'approved';
        if (!this.store.moveApproval(a.id, 'pending', to, iso, `${reviewer}: ${text}`)) throw new GatehouseError('conflict', `the approval ${a.id} was settled by someone else`);
        this.store.audit.append({ ...base, type: `approval.${to}` });
      } else {
        this.store.audit.append({ ...base, type: 'approval.vote', approvals, required: a.required });
      }
      return this.store.approval(a.id) as ApprovalRecord;
    });
    if (expired) {
      await this.expireDue();
      throw new GatehouseError('approval_expired', `the approval ${approvalId} expired; the agent must ask again`);
    }
    this.emit('approval', settled as ApprovalRecord);
    return settled as ApprovalRecord;
  }

  /**
   * Waits until an approval leaves `pending` or `timeoutMs` passes; returns it as it then stands.
   * @param signal aborts the wait (the client went away).
   */
  async waitFor(approvalId: string, timeoutMs: number, signal?: AbortSignal): Promise<ApprovalRecord> {
    const read = () => {
      const a = this.store.approval(approvalId);
      if (a === undefined) throw new GatehouseError('not_found', `no approval ${approvalId}`);
      return a;
    };
    const first = read();
    if (first.status !== 'pending' || timeoutMs <= 0) return first;
    return new Promise<ApprovalRecord>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('approval', onApproval);
        this.off('external', onExternal);
        signal?.removeEventListener('abort', done);
        resolve(read());
      };
      const onApproval = (a: ApprovalRecord) => {
        if (a.id === approvalId && a.status !== 'pending') done();
      };
      const onExternal = () => {
        if (read().status !== 'pending') done();
      };
      const timer = setTimeout(done, timeoutMs);
      this.on('approval', onApproval);
      this.on('external', onExternal);
      signal?.addEventListener('abort', done);
    });
  }

  /** Marks approvals and sessions whose time is up as expired, each with its audit record. */
  async expireDue(): Promise<void> {
    const iso = this.now().toISOString();
    const changed = await this.store.batched(() => {
      const records: AuditBody[] = [];
      const approvals: string[] = [];
      const sessions: string[] = [];
      for (const a of this.store.approvalsDue(iso)) {
        if (!this.store.moveApproval(a.id, a.status, 'expired', iso, a.status === 'pending' ? 'no reviewer answered in time' : 'approved but not used in time')) continue;
        const s = this.store.session(a.session);
        records.push({ time: iso, type: 'approval.expired', approval: a.id, session: a.session, agent: s?.agent, environment: s?.environment, decision: a.decisionId });
        approvals.push(a.id);
      }
      this.store.pruneRates(iso);
      for (const s of this.store.sessionsDue(iso)) {
        if (!this.store.endSession(s.id, 'expired', `the session's time ran out at ${s.expires}`, 'gatehouse', iso)) continue;
        const revoked = this.store.revokePhantomTokens(s.id, iso);
        records.push({ time: iso, type: 'session.expired', session: s.id, agent: s.agent, environment: s.environment, ...(revoked.length > 0 ? { revokedTokens: revoked } : {}) });
        sessions.push(s.id);
      }
      if (records.length > 0) this.store.audit.append(...records);
      return { approvals, sessions };
    });
    for (const id of changed.approvals) this.emit('approval', this.store.approval(id) as ApprovalRecord);
    for (const id of changed.sessions) this.emit('session', this.store.session(id) as SessionRecord);
  }

  /** Signs a checkpoint when records were added since the last one; returns its sequence number or null. */
  checkpoint(): number | null {
    const head = this.store.audit.head();
    if (head === null || head.seq === this.lastCheckpointSeq) return null;
    const cp = this.store.transaction(() => this.store.audit.checkpoint());
    this.lastCheckpointSeq = cp?.seq ?? this.lastCheckpointSeq;
    return cp?.seq ?? null;
  }

  /** A reviewer by bearer token. @throws GatehouseError `unauthorized`. */
  reviewerByToken(token: string | undefined): string {
    const r = token !== undefined && tokenKind(token) === 'reviewer' ? this.store.reviewerByTokenHash(tokenHash(token)) : undefined;
    if (r === undefined) throw unauthorized();
    return r.name;
  }
}

/** Raises a decision to ask when what was observed passes the policy's limits; the counts become reasons. */
function withLimits(d: Decision, observed: Observed, policy: CompiledPolicy, sessionRows: number): Decision {
  const { maxRowsPerStatement: perStatement, maxRowsPerSession: perSession } = policy.limits;
  const n = (x: number) => x.toLocaleString('en-US');
  const reasons = observed.statements.map((s, i) => `${observed.statements.length > 1 ? `statement ${i + 1}: ` : ''}${s.command}${s.tables.length ? ` on ${s.tables.join(', ')}` : ''} ${s.rows === null ? `touches rows that cannot be counted before it runs${s.note ? ` (${s.note})` : ''}` : `would touch ${n(s.rows)} row${s.rows === 1 ? '' : 's'}`}`);
  const total = observed.statements.reduce((a, s) => a + (s.rows ?? 0), 0);
  const over: string[] = [];
  if (observed.statements.some((s) => s.rows === null)) over.push('the limits cannot be checked, so a reviewer decides');
  if (observed.statements.some((s) => s.rows !== null && s.rows > perStatement)) over.push(`the limit is ${n(perStatement)} rows per statement`);
  if (sessionRows + total > perSession) over.push(`the session would have touched ${n(sessionRows + total)} rows; the limit is ${n(perSession)} per session`);
  if (d.verdict === 'deny' || (over.length === 0 && d.verdict === 'allow')) return { ...d, reasons: [...d.reasons, ...reasons] };
  if (over.length === 0) return { ...d, reasons: [...reasons, ...d.reasons] };
  const rule = d.verdict === 'ask' ? d.rule : { id: 'gatehouse:limit-rows', file: policy.file, line: null };
  return { ...d, verdict: 'ask', rule, reasons: [...reasons.map((r) => `${r} (${over.join('; ')})`), ...d.reasons] };
}

/** What an enforcement point learns back from an outcome: its class and, on a stop, the plain message for the agent. */
export interface OutcomeResult {
  recorded: number;
  /** The error class, or null for a success. */
  class: string | null;
  action: 'ok' | 'recover' | 'stop';
  halted?: true;
  /** For the agent: on a stop, that the task is over and why; on a recover, the retry terms. */
  message?: string;
}

const outcomeSchema = z.strictObject({
  decision: z.string().min(1).max(64).describe('the decision id the outcome belongs to'),
  status: z.enum(['ok', 'error', 'refused']).describe('refused: the enforcement point did not run the action (its own check); not an error of the system, so not classified'),
  exitCode: z.number().int().optional(),
  sqlstate: z.string().regex(/^[0-9A-Z]{5}$/).optional(),
  httpStatus: z.number().int().min(100).max(599).optional(),
  error: z.string().max(16384).optional(),
  rows: z.number().int().min(0).optional().describe('rows the action touched (sql_query), added to the session\'s count'),
});

/** A limit that raises a verdict: its rule id (`gatehouse:limit-…`, `gatehouse:retry-…`), the reason, and whether the session halts. */
interface Raised {
  verdict: 'deny' | 'ask';
  rule: string;
  reason: string;
  halt?: boolean;
}

/**
 * Spend caps of a credential for one request (cents): deny when the request would pass the
 * session's or the rolling hour's cap, ask when it alone is above `askAbove`; null when within.
 * Runs inside the decision's transaction.
 */
function spendCheck(store: SqliteStore, use: CredentialUse, session: string, time: Date): Raised | null {
  const spend = use.credential.spend;
  if (spend === null || use.cents === null || use.cents === 0) return null;
  const spent = store.spent(use.credential.name, session, new Date(time.getTime() - 3600_000).toISOString());
  const money = (c: number) => (c / 100).toFixed(2);
  if (spend.perSession !== null && spent.session + use.cents > spend.perSession) {
    return { verdict: 'deny', rule: 'gatehouse:limit-spend', reason: `${money(use.cents)} would bring this session's spend through ${use.credential.name} to ${money(spent.session + use.cents)}, past its cap of ${money(spend.perSession)}` };
  }
  if (spend.perHour !== null && spent.window + use.cents > spend.perHour) {
    return { verdict: 'deny', rule: 'gatehouse:limit-spend', reason: `${money(use.cents)} would bring the last hour's spend through ${use.credential.name} to ${money(spent.window + use.cents)}, past its cap of ${money(spend.perHour)}` };
  }
  if (spend.askAbove !== null && use.cents > spend.askAbove) return { verdict: 'ask', rule: 'gatehouse:limit-spend', reason: `${money(use.cents)} is above ${money(spend.askAbove)}, the most one request through ${use.credential.name} may spend without a reviewer` };
  return null;
}

function unauthorized(): GatehouseError {
  return new GatehouseError('unauthorized', 'missing or invalid credentials');
}
