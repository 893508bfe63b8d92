import { request } from 'undici';
import type { Gateway, DecisionResult } from '../../gateway/gateway.js';
import type { CompiledCredential } from '../../policy/compile.js';
import type { Vault } from '../../credentials/vault.js';
import type { SessionRecord } from '../../store/sqlite/store.js';
import { tokenHash } from '../../sessions/tokens.js';

/**
 * The credential proxy: the enforcement point for HTTP calls made with a lent credential. An agent
 * sends its request with its phantom token where the real credential would go (any header, or a
 * query parameter) to `/proxy/{credential}/…` on the gateway, or — for plain `http://` URLs —
 * through the gateway's forward proxy (`HTTP_PROXY`). For each request:
 *
 * 1. the phantom token is found and looked up by its SHA-256 (unknown → 401, nothing recorded);
 * 2. the request becomes an `http` action judged by the whole pipeline, in the token's session,
 *    with the credential's scope (host, method, path globs) and spend caps checked in the
 *    decision's own transaction: a closed, halted or expired session — whose tokens are revoked
 *    with it — denies, on every use;
 * 3. allow → the phantom token is taken out, the real credential (from the {@link Vault}) put in as
 *    the policy says, and the request forwarded with undici; ask → held until a reviewer answers
 *    (at most `approvalWaitMs`, then 403 naming the approval: the same request sent again once it
 *    is approved goes through once); deny → 403 with the reasons.
 * 4. The response comes back unchanged, except that the real secret's value is masked wherever the
 *    upstream echoes it. Its status is recorded as the decision's outcome.
 *
 * Responses from the proxy itself are JSON `{verdict, error | rule+reasons, decision?}`.
 */

export interface ProxyOptions {
  /** Milliseconds the upstream has to answer (headers and body), default 30,000. */
  timeoutMs?: number;
  /** Largest upstream response body, bytes (default 10 MiB); a larger one is a 502. */
  maxResponseBytes?: number;
  /** Milliseconds an asked request is held for a reviewer before a 403 (default 110,000). */
  approvalWaitMs?: number;
}

export interface ProxyRequest {
  method: string;
  /** `reverse`: `/proxy/{credential}/…` (target is the part after it, with the query); `forward`: an absolute http:// URL. */
  mode: 'reverse' | 'forward';
  credential: string | null;
  target: string;
  headers: Record<string, string>;
  body: Buffer;
  signal?: AbortSignal;
}

export interface ProxyResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

const PHANTOM = /gatehouse_phantom_[A-Za-z0-9_-]{43}/g;
const HAS_PHANTOM = /gatehouse_phantom_[A-Za-z0-9_-]{43}/;
/** Headers that belong to one hop (RFC 9110 §7.6.1), or that the proxy sets itself. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-authorization', 'proxy-authenticate', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'accept-encoding']);
/** Request bodies judged as text up to this size; a larger body is refused rather than judged unread. */
const MAX_JUDGED_BODY = 1024 * 1024;

export class CredentialProxy {
  private readonly timeoutMs: number;
  private readonly maxResponse: number;
  private readonly approvalWaitMs: number;

  constructor(private readonly gateway: Gateway, private readonly vault: Vault, private readonly policyCredentials: () => ReadonlyMap<string, CompiledCredential>, options: ProxyOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxResponse = options.maxResponseBytes ?? 10 * 1024 * 1024;
    this.approvalWaitMs = options.approvalWaitMs ?? 110_000;
  }

  /** Judges, and forwards when allowed. Never throws: every failure is a response that denies. */
  async handle(req: ProxyRequest): Promise<ProxyResponse> {
    try {
      return await this.handleOrThrow(req);
    } catch (err) {
      return refuse(503, `the request could not be judged (${(err as Error).message}); it was not sent`);
    }
  }

  private async handleOrThrow(req: ProxyRequest): Promise<ProxyResponse> {
    const method = req.method.toUpperCase();
    const tokens = new Set<string>();
    for (const v of Object.values(req.headers)) for (const m of v.matchAll(PHANTOM)) tokens.add(m[0]);
    for (const m of decodeURIComponentSafe(req.target).matchAll(PHANTOM)) tokens.add(m[0]);
    if (tokens.size !== 1) return refuse(401, tokens.size === 0 ? 'no phantom token in the request: put the session\'s token where the credential goes (Authorization: Bearer …)' : 'more than one phantom token in the request');
    const token = [...tokens][0] as string;
    const lent = this.gateway.store.phantomToken(tokenHash(token));
    if (lent === undefined) return refuse(401, 'unknown phantom token');
    const credential = this.policyCredentials().get(lent.credential);
    if (credential === undefined) return refuse(403, `the policy in force no longer has the credential ${lent.credential}`);
    const session = this.gateway.store.session(lent.session) as SessionRecord;

    let url: URL;
    let outOfScope: string | null = null;
    if (req.mode === 'reverse') {
      if (req.credential !== lent.credential) outOfScope = `the token is lent for ${lent.credential}, not ${req.credential}`;
      if (!/^\/?[^?#]*(\?[^#]*)?$/.test(req.target) || /(^|\/)\.\.?(\/|$|\?)|%2e|%2f|%5c|\\/i.test(req.target)) return refuse(400, 'the path holds `..`, `.` or an encoded separator: it is refused rather than guessed at');
      url = new URL(credential.upstream + (req.target.startsWith('/') ? req.target : `/${req.target}`));
    } else {
      url = new URL(req.target);
      if (url.protocol !== 'http:') return refuse(400, 'the forward proxy takes plain http:// URLs; use /proxy/{credential}/ on the gateway for https');
    }
    const path = url.pathname;
    if (outOfScope === null && !credential.inScope(url.hostname.toLowerCase(), method, path)) outOfScope = `${method} ${url.host}${path} is outside the scope of ${credential.name}`;
    if (req.body.length > MAX_JUDGED_BODY) return refuse(413, `the body is ${req.body.length} bytes; the proxy judges at most ${MAX_JUDGED_BODY}`);

    const bodyText = req.body.toString('utf8');
    const shown = new URL(url);
    for (const [k, v] of [...shown.searchParams]) if (HAS_PHANTOM.test(v)) shown.searchParams.set(k, `[phantom ${lent.id}]`);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k.toLowerCase())) headers[k.toLowerCase()] = v.replace(PHANTOM, `[phantom ${lent.id}]`);
    const action = { kind: 'http', method, url: shown.toString(), headers, ...(bodyText === '' ? {} : { body: bodyText }) };
    const use = { credential, tokenId: lent.id, outOfScope, cents: amountCents(credential, bodyText) };

    let decided = await this.gateway.act(session, action, use);
    if (decided.verdict === 'ask' && decided.approval !== undefined) {
      const answered = await this.gateway.waitFor(decided.approval.id, this.approvalWaitMs, req.signal);
      if (answered.status === 'approved') decided = await this.gateway.act(this.gateway.store.session(session.id) as SessionRecord, action, use);
    }
    if (decided.verdict !== 'allow') return refused(decided);
    return this.forward(url, method, req, credential, session, decided.decision);
  }

  private async forward(url: URL, method: string, req: ProxyRequest, credential: CompiledCredential, session: SessionRecord, decision: string): Promise<ProxyResponse> {
    let secret: string | undefined;
    let missing: string | null = null;
    try {
      secret = this.vault.reveal(credential.secret);
      if (secret === undefined) missing = `the secret ${credential.secret} is not in the secret store`;
    } catch (err) {
      missing = (err as Error).message;
    }
    if (secret === undefined || missing !== null) {
      void this.gateway.recordOutcome(session, { decision, status: 'refused', error: missing ?? 'no secret' }).catch(() => undefined);
      return refuse(503, `${missing}; the request was not sent`, decision);
    }
    const out = new URL(url);
    for (const [k, v] of [...out.searchParams]) if (HAS_PHANTOM.test(v)) out.searchParams.delete(k);
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    for (const [k, v] of Object.entries(req.headers)) {
      const name = k.toLowerCase();
      if (!HOP.has(name) && !HAS_PHANTOM.test(v)) headers[name] = v;
    }
    if (credential.inject.query !== undefined) out.searchParams.set(credential.inject.query, secret);
    else headers[credential.inject.header.toLowerCase()] = credential.inject.format.replace('{secret}', secret);
    let status: number;
    let body: Buffer;
    let resHeaders: Record<string, string>;
    try {
      const res = await request(out, {
        method: method as 'GET', headers, body: req.body.length > 0 ? req.body : null, signal: req.signal,
        headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.maxResponse) {
          res.body.destroy();
          throw new Error(`the response is larger than ${this.maxResponse} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      status = res.statusCode;
      body = Buffer.concat(chunks);
      resHeaders = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP.has(k)) resHeaders[k] = Array.isArray(v) ? v.join(', ') : v;
      const encoding = resHeaders['content-encoding'];
      if (encoding !== undefined && encoding !== 'identity') throw new Error(`the upstream sent a ${encoding}-encoded body, which cannot be checked for the secret`);
    } catch (err) {
      const error = `the upstream could not be reached: ${(err as Error).message}`;
      await this.gateway.recordOutcome(session, { decision, status: 'error', error }).catch(() => undefined);
      return refuse(502, error, decision);
    }
    // INVARIANT: the real secret never goes back to the agent, however the upstream echoes it
    const masked = maskSecret(body, secret);
    for (const [k, v] of Object.entries(resHeaders)) resHeaders[k] = v.split(secret).join('[REDACTED]');
    // the outcome is recorded after the fact: the answer does not wait for it (the decision was durable before the request left)
    void this.gateway.recordOutcome(session, status < 400 ? { decision, status: 'ok', httpStatus: status } : { decision, status: 'error', httpStatus: status, error: `HTTP ${status}` }).catch(() => undefined);
    return { status, headers: resHeaders, body: masked };
  }
}

/**
 * The request's amount in cents, from the credential's spend field (a dotted path into a JSON
 * body): 0 when there is no cap, no body or no such field; null when it cannot be read (not JSON,
 * not a non-negative number with at most two decimals), which is refused.
 */
function amountCents(credential: CompiledCredential, body: string): number | null {
  const spend = credential.spend;
  if (spend === null || body.trim() === '') return 0;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  for (const key of spend.field.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, key)) return 0;
    value = (value as Record<string, unknown>)[key];
  }
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : null;
  const m = text === null ? null : /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(text);
  if (m === null) return null;
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

function maskSecret(body: Buffer, secret: string): Buffer {
  const needle = Buffer.from(secret, 'utf8');
  if (needle.length === 0 || body.indexOf(needle) < 0) return body;
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = body.indexOf(needle); i >= 0; i = body.indexOf(needle, at)) {
    parts.push(body.subarray(at, i), Buffer.from('[REDACTED]'));
    at = i + needle.length;
  }
  parts.push(body.subarray(at));
  return Buffer.concat(parts);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function refuse(status: number, error: string, decision?: string): ProxyResponse {
  return json(status, { verdict: 'deny', error, ...(decision === undefined ? {} : { decision }) });
}

function refused(d: DecisionResult): ProxyResponse {
  return json(403, { verdict: d.verdict, decision: d.decision, rule: d.rule.id, reasons: d.reasons, ...(d.approval === undefined ? {} : { approval: d.approval }) });
}

function json(status: number, value: unknown): ProxyResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(value)) };
}
