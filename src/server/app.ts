import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Verification } from '../audit/chain.js';
import type { CredentialProxy } from '../enforcers/http-proxy/proxy.js';
import type { Gateway } from '../gateway/gateway.js';
import { acceptTool, pinTools, type ToolDefinition } from '../gateway/pins.js';
import { GatehouseError } from '../gatehouse-error.js';
import { signingKey } from '../store/sqlite/audit.js';
import type { ApprovalRecord, SessionRecord } from '../store/sqlite/store.js';
import { tokenHash, tokenKind } from '../sessions/tokens.js';

/**
 * The gateway's HTTP API and the reviewers' page (Hono).
 *
 * Agents: `POST /v1/sessions` (agent token), `POST /v1/sessions/{id}/actions|outcomes|close`,
 * `GET /v1/sessions/{id}/events` and `GET /v1/approvals/{id}[/wait]` (session token).
 * Reviewers: the page at `/`, and `GET /v1/approvals|sessions|audit|notifications|events`,
 * `POST /v1/approvals/{id}/approve|reject`, `POST /v1/sessions/{id}/halt` with a reviewer token or
 * the page's cookie (HttpOnly, SameSite=Strict) plus its CSRF header on every change.
 *
 * Errors are `{"error": {"code", "message"}}`; on the actions endpoint every error also carries
 * `"verdict": "deny"`, so a client that reads only the verdict still fails closed.
 */

export interface AppOptions {
  /** Largest request body in bytes (default 1 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Longest long poll in seconds (default 120). */
  maxWaitSeconds?: number;
  /** Reviewer sign-ins last this many seconds (default 12 hours). */
  webSessionSeconds?: number;
  /** Serves `/proxy/{credential}/…` when given. */
  credentialProxy?: CredentialProxy;
}

const COOKIE = 'gatehouse_review';
const CSRF_HEADER = 'x-gatehouse-csrf';

const STATUS: Record<string, ContentfulStatusCode> = {
  unauthorized: 401, forbidden: 403, not_found: 404, input_invalid: 400, malformed_json: 400, unsupported_media_type: 415,
  conflict: 409, approval_expired: 409, already_voted: 409, payload_too_large: 413, store_unavailable: 503,
};

const UI_DIR = new URL('../../src/server/ui/', import.meta.url);
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

type Reviewer = { name: string; csrf: string | null };

export function createApp(gw: Gateway, options: AppOptions = {}): Hono {
  const app = new Hono();
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const maxWait = options.maxWaitSeconds ?? 120;
  const webSeconds = options.webSessionSeconds ?? 12 * 3600;
  const secureCookie = gw.publicUrl.startsWith('https:');
  let verified: { key: string; result: Verification } | null = null;

  // Headers go on the context before the handler: set after, they would force a slower response path.
  app.use('*', async (c, next) => {
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'no-referrer');
    c.header('x-frame-options', 'DENY');
    c.header('cache-control', 'no-store');
    await next();
  });
  // A declared length is checked without touching the body; only a chunked body is counted as it streams.
  const streamedLimit = bodyLimit({ maxSize: maxBody, onError: () => { throw tooLarge(); } });
  const tooLarge = () => new GatehouseError('payload_too_large', `the body is larger than ${maxBody} bytes`);
  app.use('*', async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared !== undefined) {
      if (!/^\d+$/.test(declared) || Number(declared) > maxBody) throw tooLarge();
      return next();
    }
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    return streamedLimit(c, next);
  });

  app.onError((err, c) => {
    const e = err instanceof GatehouseError ? err : new GatehouseError('internal', 'internal error');
    if (!(err instanceof GatehouseError)) console.error(`gatehouse serve: internal error on ${c.req.method} ${c.req.path}: ${(err as Error).stack ?? String(err)}`);
    const status = STATUS[e.code] ?? 500;
    const body: Record<string, unknown> = { error: { code: e.code, message: e.message } };
    if (/^\/v1\/sessions\/[^/]+\/actions$/.test(c.req.path) || c.req.path.startsWith('/proxy/')) body.verdict = 'deny';
    if (e.code === 'conflict' && e.data.status !== undefined) Object.assign(body.error as Record<string, unknown>, { status: e.data.status, resolution: e.data.resolution ?? null });
    return c.json(body, status);
  });
  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404));

  const json = async (c: Context): Promise<unknown> => {
    const type = c.req.header('content-type') ?? '';
    if (!/^application\/json\b/i.test(type)) throw new GatehouseError('unsupported_media_type', 'send the body as application/json');
    const text = await c.req.text();
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new GatehouseError('malformed_json', `the body is not valid JSON: ${(err as Error).message}`);
    }
  };
  const bearer = (c: Context): string | undefined => {
    const h = c.req.header('authorization');
    const m = h === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(h);
    return m?.[1];
  };

  /** The reviewer behind a request: a reviewer bearer token, or the page's cookie (with CSRF on changes). */
  const reviewer = (c: Context): Reviewer => {
    const token = bearer(c);
    if (token !== undefined) return { name: gw.reviewerByToken(token), csrf: null };
    const cookie = getCookie(c, COOKIE);
    const web = cookie === undefined ? undefined : gw.store.webSession(tokenHash(cookie), new Date().toISOString());
    if (web === undefined) throw new GatehouseError('unauthorized', 'missing or invalid credentials');
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const origin = c.req.header('origin');
      if (origin !== undefined && origin !== new URL(c.req.url).origin && origin !== new URL(gw.publicUrl).origin) throw new GatehouseError('forbidden', 'cross-origin request refused');
      if (c.req.header(CSRF_HEADER) !== web.csrf) throw new GatehouseError('forbidden', 'missing or wrong CSRF token');
    }
    return { name: web.reviewer, csrf: web.csrf };
  };

  // ── agents ────────────────────────────────────────────────────────────────────────────────

  app.post('/v1/sessions', async (c) => {
    gw.agentByToken(bearer(c));
    return c.json(await gw.openSession(bearer(c), await json(c)), 201);
  });

  app.post('/v1/sessions/:id/actions', async (c) => {
    // INVARIANT: credentials are checked before the body is read, so a wrong token is a 401 whatever the body
    const session = gw.authenticateSession(c.req.param('id'), bearer(c));
    return c.json(await gw.act(session, await json(c)));
  });

  app.post('/v1/sessions/:id/outcomes', async (c) => {
    const token = bearer(c);
    gw.authenticateSession(c.req.param('id'), token);
    return c.json(await gw.reportOutcome(c.req.param('id'), token, await json(c)), 201);
  });

  app.post('/v1/sessions/:id/tools', async (c) => {
    const session = gw.authenticateSession(c.req.param('id'), bearer(c));
    const body = (await json(c)) as { server?: unknown; tools?: unknown };
    if (body === null || typeof body !== 'object' || typeof body.server !== 'string' || body.server === '' || !Array.isArray(body.tools)) throw new GatehouseError('input_invalid', 'send {"server": NAME, "tools": [...]} as listed by tools/list');
    return c.json(await pinTools(gw.store, session, body.server, body.tools as ToolDefinition[], new Date().toISOString()));
  });

  app.post('/v1/sessions/:id/close', async (c) => c.json(sessionView(gw, await gw.closeSession(c.req.param('id'), bearer(c)))));

  /** An approval for its session's token, or for a reviewer. */
  const approvalFor = (c: Context): ApprovalRecord => {
    const token = bearer(c);
    const id = c.req.param('id') as string;
    const a = gw.store.approval(id);
    if (token !== undefined && tokenKind(token) === 'session') {
      if (a === undefined) throw new GatehouseError('unauthorized', 'missing or invalid credentials');
      gw.authenticateSession(a.session, token);
      return a;
    }
    reviewer(c);
    if (a === undefined) throw new GatehouseError('not_found', `no approval ${id}`);
    return a;
  };

  app.get('/v1/approvals/:id', (c) => c.json(approvalView(gw, approvalFor(c))));

  app.post('/v1/approvals/:id/withdraw', async (c) => {
    const token = bearer(c);
    const a = gw.store.approval(c.req.param('id'));
    if (a === undefined || token === undefined || tokenKind(token) !== 'session') throw new GatehouseError('unauthorized', 'missing or invalid credentials');
    return c.json(approvalView(gw, await gw.withdraw(gw.authenticateSession(a.session, token), a.id)));
  });

  app.get('/v1/approvals/:id/wait', async (c) => {
    const a = approvalFor(c);
    const raw = c.req.query('timeout') ?? '30';
    const seconds = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw) || seconds > maxWait) throw new GatehouseError('input_invalid', `timeout is seconds, 0–${maxWait}`);
    const settled = await gw.waitFor(a.id, seconds * 1000, c.req.raw.signal);
    return c.json(approvalView(gw, settled));
  });

  app.get('/v1/sessions/:id/events', (c) => {
    const session = gw.authenticateSession(c.req.param('id'), bearer(c));
    return events(c, gw, (name, data) => (name === 'approval' && (data as ApprovalRecord).session === session.id) || (name === 'session' && (data as SessionRecord).id === session.id), () => gw.effectiveState(gw.store.session(session.id) as SessionRecord) === 'active');
  });

  app.get('/v1/sessions/:id', (c) => {
    const token = bearer(c);
    const id = c.req.param('id');
    if (token !== undefined && tokenKind(token) === 'session') return c.json(sessionView(gw, gw.authenticateSession(id, token)));
    reviewer(c);
    const s = gw.store.session(id);
    if (s === undefined) throw new GatehouseError('not_found', `no session ${id}`);
    return c.json({ ...sessionView(gw, s), history: gw.store.audit.tail(200, id) });
  });

  // ── reviewers ─────────────────────────────────────────────────────────────────────────────

  app.get('/v1/me', (c) => {
    const r = reviewer(c);
    return c.json({ reviewer: r.name, csrf: r.csrf });
  });

  app.get('/v1/approvals', (c) => {
    reviewer(c);
    const status = c.req.query('status');
    if (status !== undefined && !['pending', 'approved', 'rejected', 'expired', 'used'].includes(status)) throw new GatehouseError('input_invalid', 'status is pending, approved, rejected, expired or used');
    return c.json({ approvals: gw.store.approvals(status as ApprovalRecord['status'] | undefined).map((a) => approvalView(gw, a)) });
  });

  for (const vote of ['approve', 'reject'] as const) {
    app.post(`/v1/approvals/:id/${vote}`, async (c) => {
      const r = reviewer(c);
      const body = (await json(c)) as { reason?: unknown };
      if (body === null || typeof body !== 'object' || typeof body.reason !== 'string') throw new GatehouseError('input_invalid', `send {"reason": "…"} to ${vote}`);
      const a = await gw.answer(c.req.param('id'), r.name, vote, body.reason, r.csrf === null ? 'api' : 'page');
      return c.json(approvalView(gw, a));
    });
  }

  app.get('/v1/sessions', (c) => {
    reviewer(c);
    return c.json({ sessions: gw.store.sessions().map((s) => sessionView(gw, s)) });
  });

  app.post('/v1/sessions/:id/halt', async (c) => {
    // a reviewer halts any session; a session's own token halts only that session
    const token = bearer(c);
    const own = token !== undefined && tokenKind(token) === 'session' ? gw.authenticateSession(c.req.param('id'), token) : null;
    const r = own === null ? reviewer(c) : null;
    const body = (await json(c)) as { reason?: unknown };
    if (body === null || typeof body !== 'object' || typeof body.reason !== 'string') throw new GatehouseError('input_invalid', 'send {"reason": "…"} to halt');
    if (r === null) return c.json(sessionView(gw, await gw.haltOwnSession(c.req.param('id'), token, body.reason)));
    return c.json(sessionView(gw, await gw.haltSession(c.req.param('id'), r.name, body.reason)));
  });

  app.post('/v1/sessions/:id/resume', async (c) => {
    const r = reviewer(c);
    const body = (await json(c)) as { reason?: unknown };
    if (body === null || typeof body !== 'object' || typeof body.reason !== 'string') throw new GatehouseError('input_invalid', 'send {"reason": "…"} to resume');
    return c.json(sessionView(gw, await gw.resumeSession(c.req.param('id'), r.name, body.reason)));
  });

  app.get('/v1/audit', (c) => {
    reviewer(c);
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 100) || 100, 1), 1000);
    return c.json({ records: gw.store.audit.tail(limit, c.req.query('session')) });
  });

  app.get('/v1/audit/verify', (c) => {
    reviewer(c);
    // INVARIANT: the cached result is reused only while neither this process (a new head) nor another (data_version) changed the store
    const key = `${gw.store.audit.head()?.hash ?? ''}:${gw.store.dataVersion()}`;
    if (verified === null || verified.key !== key) {
      verified = { key, result: gw.store.audit.verify(signingKey(gw.store.dir).publicKey) };
    }
    return c.json(verified.result);
  });

  app.get('/v1/pins', (c) => {
    reviewer(c);
    return c.json({ pins: gw.store.toolPins({ agent: c.req.query('agent'), server: c.req.query('server') }) });
  });

  app.post('/v1/pins/:agent/:server/:tool/accept', async (c) => {
    const r = reviewer(c);
    const body = (await json(c)) as { hash?: unknown };
    if (body === null || typeof body !== 'object' || typeof body.hash !== 'string') throw new GatehouseError('input_invalid', 'send {"hash": …} of the definition you reviewed (GET /v1/pins)');
    acceptTool(gw.store, c.req.param('agent'), c.req.param('server'), c.req.param('tool'), body.hash, r.name, new Date().toISOString());
    return c.json(gw.store.toolPin(c.req.param('agent'), c.req.param('server'), c.req.param('tool')) ?? {});
  });

  app.get('/v1/notifications', (c) => {
    reviewer(c);
    return c.json({ notifications: gw.store.notifications() });
  });

  app.get('/v1/events', (c) => {
    reviewer(c);
    // INVARIANT: each event goes out only while the credentials that opened the stream still hold
    return events(c, gw, () => true, () => {
      try {
        reviewer(c);
        return true;
      } catch {
        return false;
      }
    });
  });

  // ── the page ──────────────────────────────────────────────────────────────────────────────

  app.post('/ui/login', async (c) => {
    const body = (await json(c)) as { token?: unknown };
    const name = gw.reviewerByToken(typeof body?.token === 'string' ? body.token : undefined);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const now = new Date();
    gw.store.transaction(() => {
      gw.store.purgeWebSessions(now.toISOString());
      gw.store.insertWebSession(tokenHash(id), name, csrf, new Date(now.getTime() + webSeconds * 1000).toISOString());
      gw.store.audit.append({ time: now.toISOString(), type: 'reviewer.signed_in', reviewer: name, via: 'page' });
    });
    setCookie(c, COOKIE, id, { httpOnly: true, sameSite: 'Strict', path: '/', maxAge: webSeconds, secure: secureCookie });
    return c.json({ reviewer: name, csrf });
  });

  app.post('/ui/logout', (c) => {
    const cookie = getCookie(c, COOKIE);
    // a live sign-in ends only with its CSRF token; a stale cookie is just cleared
    if (cookie !== undefined && gw.store.webSession(tokenHash(cookie), new Date().toISOString()) !== undefined) {
      reviewer(c);
      gw.store.deleteWebSession(tokenHash(cookie));
    }
    deleteCookie(c, COOKIE, { path: '/' });
    return c.json({ signedOut: true });
  });

  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, (c) => {
      c.header('content-security-policy', "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
      c.header('cache-control', 'no-cache');
      return c.body(readFileSync(new URL(asset.file, UI_DIR)), 200, { 'content-type': asset.type });
    });
  }

  // ── the credential proxy ────────────────────────────────────────────────────────────────
  const proxy = options.credentialProxy;
  if (proxy !== undefined) {
    app.all('/proxy/:credential/*', async (c) => {
      const prefix = `/proxy/${c.req.param('credential')}`;
      const raw = new URL(c.req.url);
      const headers: Record<string, string> = {};
      c.req.raw.headers.forEach((v, k) => (headers[k] = v));
      const res = await proxy.handle({
        method: c.req.method, mode: 'reverse', credential: c.req.param('credential'), target: raw.pathname.slice(prefix.length) + raw.search,
        headers, body: Buffer.from(await c.req.arrayBuffer()), signal: c.req.raw.signal,
      });
      // the API's own security headers are for the API: the upstream's answer goes back as it came
      const out = new Headers(res.headers);
      return new Response(res.status === 204 || res.status === 304 || c.req.method === 'HEAD' ? null : res.body, { status: res.status, headers: out });
    });
  }

  app.get('/healthz', (c) => c.json({ ok: true }));
  return app;
}

/** A session as the API shows it: its state as of now, never its token. */
function sessionView(gw: Gateway, s: SessionRecord): Record<string, unknown> {
  return { ...s, state: gw.effectiveState(s) };
}

/** An approval with its session and the time left. */
function approvalView(gw: Gateway, a: ApprovalRecord): Record<string, unknown> {
  const s = gw.store.session(a.session);
  const left = Math.max(0, Math.round((Date.parse(a.expires) - Date.now()) / 1000));
  return { ...a, ...gw.approvalLink(a), secondsLeft: a.status === 'pending' ? left : 0, agent: s?.agent, environment: s?.environment, task: s?.task, sessionState: s ? gw.effectiveState(s) : null };
}

/**
 * Server-sent events from the gateway's events that `keep` lets through, with a keep-alive; the
 * stream ends as soon as `allowed` says the credentials that opened it no longer hold.
 */
function events(c: Context, gw: Gateway, keep: (name: string, data: unknown) => boolean, allowed: () => boolean): Response {
  return streamSSE(c, async (stream) => {
    const queue: { event: string; data: string }[] = [];
    let wake: (() => void) | null = null;
    const push = (event: string) => (data?: unknown) => {
      if (!keep(event, data)) return;
      const view = event === 'approval' ? approvalView(gw, data as ApprovalRecord) : event === 'session' ? sessionView(gw, data as SessionRecord) : data;
      queue.push({ event, data: JSON.stringify(view ?? {}) });
      wake?.();
    };
    const handlers = { approval: push('approval'), session: push('session'), notification: push('notification'), external: push('refresh') } as const;
    gw.on('approval', handlers.approval);
    gw.on('session', handlers.session);
    gw.on('notification', handlers.notification);
    gw.on('external', handlers.external);
    let open = true;
    stream.onAbort(() => {
      open = false;
      wake?.();
    });
    try {
      await stream.writeSSE({ event: 'ready', data: '{}' });
      while (open) {
        if (queue.length === 0) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 15_000);
            wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
          wake = null;
          if (!allowed()) break;
          if (queue.length === 0 && open) await stream.writeSSE({ event: 'ping', data: '{}' });
        }
        if (!allowed()) break;
        while (queue.length > 0 && open) await stream.writeSSE(queue.shift() as { event: string; data: string });
      }
    } finally {
      gw.off('approval', handlers.approval);
      gw.off('session', handlers.session);
      gw.off('notification', handlers.notification);
      gw.off('external', handlers.external);
    }
  });
}
