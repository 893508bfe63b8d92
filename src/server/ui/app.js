// The reviewers' page: an inbox of held actions, sessions with a kill switch, the audit trail.
//
// Plain ES module, no build step. It runs under a strict CSP (script-src 'self', no inline
// anything), so every element is built with createElement and every piece of data goes in through
// textContent: nothing from the gateway ever reaches innerHTML.
//
// Auth: the sign-in link's `#token=…` is exchanged at POST /ui/login for an HttpOnly cookie and a
// CSRF token kept in memory only; every POST carries it in `x-gatehouse-csrf`.

const CSRF_HEADER = 'x-gatehouse-csrf';
const SETTLED_SHOWN = 15;
const HISTORY_SHOWN = 8;
const REFRESH_DEBOUNCE_MS = 120;

const state = {
  reviewer: /** @type {string|null} */ (null),
  csrf: /** @type {string|null} */ (null),
  view: 'inbox',
  selected: /** @type {string|null} */ (null),
  pending: [],
  settled: [],
  sessions: [],
  notifications: [],
  histories: new Map(),
  events: /** @type {EventSource|null} */ (null),
  reconnect: /** @type {number|null} */ (null),
};

// ── small helpers ─────────────────────────────────────────────────────────────────────────────

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Builds an element. `attrs`: `class`, `text`, `on<event>` handlers, booleans (`hidden`,
 * `disabled`, …) and any other attribute; children are nodes or strings (as text), falsy ones skipped.
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false || c === '') continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function clear(el) {
  el.replaceChildren();
  return el;
}

/** Replaces an element's children (falsy ones skipped). */
function fill(el, ...children) {
  return append(clear(el), children);
}

const pad = (n) => String(n).padStart(2, '0');

/** `14:03:22` today, `Nov 21 14:03` otherwise (local time); the ISO time as the tooltip. */
function timeText(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const now = new Date();
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return hms;
  return `${d.toLocaleString('en', { month: 'short' })} ${d.getDate()} ${hms.slice(0, 5)}`;
}

function timeEl(iso) {
  return h('time', { datetime: iso ?? undefined, title: iso ?? undefined, text: timeText(iso) });
}

/** `9:58`, `1h 02m`, `3d 4h`. */
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

/** An element whose text counts down to `deadline` (ms since the epoch), updated every second. */
function countdownEl(deadline, style, attrs = {}) {
  const el = h('span', { ...attrs, class: `countdown ${attrs.class ?? ''}`.trim(), 'data-deadline': String(deadline), 'data-style': style });
  paintCountdown(el, Date.now());
  return el;
}

function paintCountdown(el, now) {
  const left = (Number(el.dataset.deadline) - now) / 1000;
  const style = el.dataset.style;
  el.classList.toggle('warn', left > 0 && left <= 120);
  el.classList.toggle('urgent', left > 0 && left <= 30);
  el.classList.toggle('over', left <= 0);
  if (style === 'approval') el.textContent = left > 0 ? `${duration(left)} left` : 'expired';
  else el.textContent = left > 0 ? `in ${duration(left)}` : 'passed';
  if (left <= 0 && el.dataset.onExpire !== 'done' && el.isConnected) {
    el.dataset.onExpire = 'done';
    el.dispatchEvent(new CustomEvent('expired', { bubbles: true }));
  }
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-deadline]')) paintCountdown(/** @type {HTMLElement} */ (el), now);
}

const KIND_LABEL = { sql: 'SQL', shell: 'shell command', http: 'HTTP request', mcp_tool: 'MCP tool call', file_read: 'file read', file_write: 'file write' };

/** The action as the agent sent it, as a reviewer reads it. */
function actionText(action) {
  if (action === null || typeof action !== 'object') return String(action ?? '');
  switch (action.kind) {
    case 'sql': return String(action.sql ?? '');
    case 'shell': return String(action.command ?? '');
    case 'http': {
      const lines = [`${action.method ?? 'GET'} ${action.url ?? ''}`];
      for (const [k, v] of Object.entries(action.headers ?? {})) lines.push(`${k}: ${v}`);
      if (action.body !== undefined && action.body !== null && action.body !== '') lines.push('', String(action.body));
      return lines.join('\n');
    }
    case 'mcp_tool': return `${action.server ?? '?'} → ${action.tool ?? '?'}\n${JSON.stringify(action.arguments ?? {}, null, 2)}`;
    case 'file_read': return String(action.path ?? '');
    case 'file_write': return action.content === undefined ? String(action.path ?? '') : `${action.path}\n──\n${action.content}`;
    default: return JSON.stringify(action, null, 2);
  }
}

/** One line of an action for tables. */
function actionLine(action) {
  const text = actionText(action).replace(/\s+/g, ' ').trim();
  return text.length > 140 ? `${text.slice(0, 139)}…` : text;
}

/** Fields of an action besides its main text (cwd, dialect, env, annotations). */
function actionExtras(action) {
  if (action === null || typeof action !== 'object') return [];
  const main = { kind: 1, sql: 1, command: 1, method: 1, url: 1, headers: 1, body: 1, server: 1, tool: 1, arguments: 1, path: 1, content: 1 };
  return Object.entries(action).filter(([k]) => !main[k]).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
}

function ruleLocation(rule) {
  if (!rule || !rule.file) return '';
  return rule.line ? `${rule.file}:${rule.line}` : rule.file;
}

function verdictBadge(verdict) {
  if (!verdict) return null;
  return h('span', { class: `badge verdict-${verdict}`, text: verdict });
}

function envBadge(env, attrs = {}) {
  const prod = /^prod/i.test(env ?? '');
  return h('span', { ...attrs, class: `env ${prod ? 'env-prod' : 'env-other'}`, title: prod ? 'production: real systems, real data' : undefined, text: prod ? `⚠ ${String(env).toUpperCase()}` : env ?? '?' });
}

function statusBadge(status) {
  return h('span', { class: `badge status-${status}`, text: status });
}

/** What an audit record is about, in one line. */
function recordDetail(r) {
  const parts = [];
  if (r.action) parts.push(h('code', { class: 'mono clip', text: actionLine(r.action) }));
  const reasons = Array.isArray(r.reasons) ? r.reasons : [];
  const extra = [];
  if (r.type === 'outcome') extra.push(`${r.status}${r.exitCode !== undefined ? ` exit ${r.exitCode}` : ''}${r.httpStatus ? ` HTTP ${r.httpStatus}` : ''}${r.sqlstate ? ` SQLSTATE ${r.sqlstate}` : ''}${r.error ? `: ${r.error}` : ''}`);
  if (r.type === 'session.opened' && r.task) extra.push(`task: ${r.task}`);
  if (r.type === 'approval.vote') extra.push(`${r.approvals}/${r.required} approvals`);
  if (r.type === 'approval.created' && r.expires) extra.push(`expires ${timeText(r.expires)}`);
  if (r.type?.startsWith('notification.')) extra.push(`${r.target ?? ''} after ${r.attempts ?? '?'} attempts${r.error ? `: ${r.error}` : ''}`);
  if (r.type === 'gateway.started' && r.listening) extra.push(`on ${r.listening}`);
  if (r.agentReason) extra.push(`agent: “${r.agentReason}”`);
  const text = [...reasons, ...extra].join(' · ');
  if (text) parts.push(h('span', { class: 'detail-text', text }));
  return parts;
}

// ── the API ───────────────────────────────────────────────────────────────────────────────────

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `the gateway answered ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? 'error';
    this.detail = body?.error ?? {};
  }
}

/**
 * Calls the gateway with the page's cookie. POSTs send JSON and the CSRF header. A 401 anywhere
 * but sign-in means the sign-in ended: back to the form.
 */
async function api(path, { method = 'GET', body, signinOn401 = true } = {}) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') {
    headers['content-type'] = 'application/json';
    if (state.csrf) headers[CSRF_HEADER] = state.csrf;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: method === 'GET' ? undefined : JSON.stringify(body ?? {}), credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, { error: { code: 'network', message: 'the gateway cannot be reached' } });
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    // an empty or non-JSON body: the status says enough
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && signinOn401 && state.reviewer !== null) signedOut('Your sign-in has ended. Sign in again.');
    throw err;
  }
  return data;
}

// ── sign-in ───────────────────────────────────────────────────────────────────────────────────

async function boot() {
  wireStatic();
  const token = takeTokenFromUrl();
  if (token !== null) return signIn(token);
  try {
    start(await api('/v1/me', { signinOn401: false }));
  } catch (err) {
    showSignIn(err.status === 401 ? '' : `Cannot reach the gateway: ${err.message}`);
  }
}

/** The `token=` of the URL fragment, removed from the address bar and history at once. */
function takeTokenFromUrl() {
  const m = /(?:^#|[#&/])token=([^&]*)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', `${location.pathname}${location.search}#/inbox`);
  try {
    return decodeURIComponent(m[1] ?? '');
  } catch {
    return m[1] ?? '';
  }
}

async function signIn(token) {
  try {
    start(await api('/ui/login', { method: 'POST', body: { token: token.trim() }, signinOn401: false }));
  } catch (err) {
    showSignIn(err.status === 401 ? 'That token was not accepted: it is wrong, was rotated, or the reviewer was removed.' : `Sign-in failed: ${err.message}`);
  }
}

function showSignIn(message) {
  stopEvents();
  state.reviewer = null;
  state.csrf = null;
  $('booting').hidden = true;
  $('nav').hidden = true;
  $('who').hidden = true;
  for (const v of document.querySelectorAll('main > section')) /** @type {HTMLElement} */ (v).hidden = v.id !== 'view-signin';
  const error = $('signin-error');
  error.textContent = message;
  error.hidden = !message;
  /** @type {HTMLInputElement} */ ($('signin-token')).value = '';
  $('signin-token').focus();
}

function signedOut(message) {
  clearCaches();
  showSignIn(message);
}

function start(me) {
  state.reviewer = me.reviewer;
  state.csrf = me.csrf;
  $('booting').hidden = true;
  $('view-signin').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('reviewer-name').textContent = me.reviewer;
  route();
  connectEvents();
  schedule('approvals', 'sessions', 'notifications');
}

async function signOut() {
  try {
    await api('/ui/logout', { method: 'POST', signinOn401: false });
  } catch {
    // signed out on this side regardless
  }
  signedOut('You signed out.');
}

// ── routing ───────────────────────────────────────────────────────────────────────────────────

function route() {
  const token = takeTokenFromUrl();
  if (token !== null) {
    signIn(token); // a sign-in link opened in this tab: its reviewer signs in
    return;
  }
  const hash = location.hash.replace(/^#\/?/, '');
  const [first, second] = hash.split('/');
  let view = 'inbox';
  state.selected = null;
  if (first === 'sessions' || first === 'audit' || first === 'notifications') view = first;
  else if (first === 'approvals' && second) state.selected = decodeURIComponent(second);
  state.view = view;
  if (state.reviewer === null) return;
  for (const v of ['inbox', 'sessions', 'audit', 'notifications']) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('#nav a')) {
    if (/** @type {HTMLElement} */ (a).dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  setTitle();
  if (view === 'audit') schedule('audit');
  if (view === 'inbox') {
    for (const { el } of cards.values()) delete el.dataset.scrolled;
    renderSelected();
  }
}

/** The tab's title carries the number waiting, so a reviewer sees it from another tab. */
function setTitle() {
  const n = state.pending.length;
  document.title = `${n > 0 ? `(${n}) ` : ''}Gatehouse · ${state.view}`;
}

// ── live updates ──────────────────────────────────────────────────────────────────────────────

function setConn(s, text) {
  const el = $('conn');
  el.dataset.state = s;
  $('conn-text').textContent = text;
}

function connectEvents() {
  stopEvents();
  setConn('connecting', 'Connecting…');
  const es = new EventSource('/v1/events', { withCredentials: true });
  state.events = es;
  es.addEventListener('ready', () => {
    setConn('live', 'Live');
    schedule('approvals', 'sessions', 'notifications', 'audit'); // whatever happened while away
  });
  es.addEventListener('ping', () => setConn('live', 'Live'));
  es.addEventListener('approval', () => schedule('approvals', 'sessions', 'audit'));
  es.addEventListener('session', () => schedule('sessions', 'approvals', 'audit'));
  es.addEventListener('notification', () => schedule('notifications', 'audit'));
  es.addEventListener('refresh', () => schedule('approvals', 'sessions', 'notifications', 'audit'));
  es.addEventListener('error', () => {
    if (state.events !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // refused (signed out?) or a non-stream answer: check the sign-in, then try again
      setConn('offline', 'Offline — retrying');
      es.close();
      state.events = null;
      state.reconnect = window.setTimeout(async () => {
        state.reconnect = null;
        try {
          await api('/v1/me');
          connectEvents();
        } catch (err) {
          if (err.status !== 401) connectEvents();
        }
      }, 3000);
    } else {
      setConn('connecting', 'Reconnecting…');
    }
  });
}

function stopEvents() {
  if (state.reconnect !== null) window.clearTimeout(state.reconnect);
  state.reconnect = null;
  state.events?.close();
  state.events = null;
}

const dirty = new Set();
let timer = null;

/** Re-fetches the named lists soon; bursts of events collapse into one fetch each. */
function schedule(...what) {
  for (const w of what) dirty.add(w);
  if (timer !== null) return;
  timer = window.setTimeout(() => {
    timer = null;
    const todo = [...dirty];
    dirty.clear();
    if (state.reviewer === null) return;
    for (const w of todo) {
      if (w === 'audit' && state.view !== 'audit') continue; // fetched when the view opens
      LOADERS[w]?.().catch(showLoadError);
    }
  }, REFRESH_DEBOUNCE_MS);
}

function showLoadError(err) {
  if (err.status === 401) return;
  toast(`Could not refresh: ${err.message}`, 'bad');
}

/** Each loader ignores answers that arrive after a newer request (out-of-order responses). */
function latest(load) {
  let seq = 0;
  return async () => {
    const mine = ++seq;
    const result = await load();
    if (mine === seq) result();
  };
}

const LOADERS = {
  approvals: latest(async () => {
    const [pending, all] = await Promise.all([api('/v1/approvals?status=pending'), api('/v1/approvals')]);
    const received = Date.now();
    const histories = await loadHistories(pending.approvals);
    return () => {
      state.pending = pending.approvals.map((a) => ({ ...a, deadline: received + a.secondsLeft * 1000 }));
      state.pending.sort((a, b) => a.deadline - b.deadline || a.created.localeCompare(b.created));
      state.settled = all.approvals.filter((a) => a.status !== 'pending').sort((a, b) => (b.resolved ?? b.created).localeCompare(a.resolved ?? a.created)).slice(0, SETTLED_SHOWN);
      state.histories = histories;
      renderInbox();
    };
  }),
  sessions: latest(async () => {
    const data = await api('/v1/sessions');
    return () => {
      state.sessions = data.sessions;
      renderSessions();
    };
  }),
  notifications: latest(async () => {
    const data = await api('/v1/notifications');
    return () => {
      state.notifications = data.notifications;
      renderNotifications();
    };
  }),
  audit: latest(async () => {
    const [tail, verify] = await Promise.all([api('/v1/audit?limit=100'), api('/v1/audit/verify')]);
    return () => renderAudit(tail.records, verify);
  }),
};

/** The recent audit records of each session with a pending approval. */
async function loadHistories(approvals) {
  const ids = [...new Set(approvals.map((a) => a.session))];
  const out = new Map();
  await Promise.all(ids.map(async (id) => {
    try {
      const s = await api(`/v1/sessions/${encodeURIComponent(id)}`);
      out.set(id, s.history ?? []);
    } catch (err) {
      if (err.status === 401) throw err;
      out.set(id, null);
    }
  }));
  return out;
}

// ── keyed lists: update in place, so typing in a reason field survives live updates ─────────

/**
 * Makes `parent`'s children the elements of `items`, in order, reusing each item's element by key.
 * `cache` maps key → { el, update }.
 */
function syncList(parent, items, keyOf, create, cache) {
  const keep = new Set(items.map(keyOf));
  for (const [k, entry] of cache) {
    if (!keep.has(k)) {
      entry.el.remove();
      cache.delete(k);
    }
  }
  items.forEach((item, i) => {
    const k = keyOf(item);
    let entry = cache.get(k);
    if (entry === undefined) {
      entry = create(item);
      cache.set(k, entry);
    } else {
      entry.update(item);
    }
    const at = parent.children[i];
    if (at !== entry.el) parent.insertBefore(entry.el, at ?? null);
  });
}

const cards = new Map();
const sessionRows = new Map();

function clearCaches() {
  cards.clear();
  sessionRows.clear();
  for (const id of ['pending-list', 'selected', 'settled-body', 'sessions-body', 'audit-body', 'notifications-body']) clear($(id));
}

// ── the inbox ─────────────────────────────────────────────────────────────────────────────────

function renderInbox() {
  const list = $('pending-list');
  syncList(list, state.pending, (a) => a.id, (a) => approvalCard(a, { live: true }), cards);
  $('pending-empty').hidden = state.pending.length > 0;
  const n = state.pending.length;
  $('pending-count').textContent = String(n);
  $('pending-count').classList.toggle('zero', n === 0);
  const prod = state.pending.filter((a) => /^prod/i.test(a.environment ?? '')).length;
  $('pending-summary').textContent = n === 0 ? '' : `${n} pending${prod ? ` · ${prod} in production` : ''} · soonest to expire first`;
  setTitle();

  const body = clear($('settled-body'));
  for (const a of state.settled) {
    const go = `#/approvals/${encodeURIComponent(a.id)}`;
    body.append(h('tr', { 'data-testid': 'settled-row', 'data-approval-id': a.id, 'data-status': a.status, class: a.id === state.selected ? 'is-selected' : undefined },
      h('td', {}, statusBadge(a.status)),
      h('td', {}, timeEl(a.resolved ?? a.created)),
      h('td', { text: a.agent ?? '?' }),
      h('td', {}, envBadge(a.environment)),
      h('td', { class: 'mono clip' }, h('a', { href: go, text: actionLine(a.action) || a.id })),
      h('td', { class: 'wrap', text: a.resolution ?? '' }),
    ));
  }
  $('settled-empty').hidden = state.settled.length > 0;
  body.closest('.table-wrap').hidden = state.settled.length === 0;
  renderSelected();
}

/** A deep link `#/approvals/{id}`: scroll to the pending card, or show a settled one on top. */
async function renderSelected() {
  const box = $('selected');
  for (const { el } of cards.values()) el.classList.toggle('is-selected', el.dataset.approvalId === state.selected);
  const id = state.selected;
  if (id === null) {
    clear(box);
    return;
  }
  const card = cards.get(id);
  if (card) {
    clear(box);
    if (card.el.dataset.scrolled !== id) {
      card.el.dataset.scrolled = id;
      card.el.scrollIntoView({ block: 'start', behavior: 'auto' });
    }
    return;
  }
  if (box.dataset.approvalId === id && box.firstChild) return;
  try {
    const a = await api(`/v1/approvals/${encodeURIComponent(id)}`);
    if (state.selected !== id) return;
    if (a.status === 'pending') {
      schedule('approvals');
      return;
    }
    box.dataset.approvalId = id;
    fill(box, approvalCard(a, { live: false }).el);
    box.scrollIntoView({ block: 'start' });
  } catch (err) {
    if (state.selected !== id || err.status === 401) return;
    box.dataset.approvalId = id;
    fill(box, h('p', { class: 'banner bad', role: 'alert', text: err.status === 404 ? `There is no approval ${id}.` : `Cannot load approval ${id}: ${err.message}` }));
  }
}

/**
 * One approval as a reviewer judges it. `live` cards (pending) carry the vote form and count down;
 * the others show how they were settled.
 */
function approvalCard(a, { live }) {
  const d = a.decision ?? {};
  const rule = d.rule ?? {};
  const prod = /^prod/i.test(a.environment ?? '');
  const titleId = `apr-title-${a.id}`;
  const votes = h('span', { class: 'votes', 'data-testid': 'approval-votes' });
  const status = h('span', { class: 'status-slot' });
  const history = h('div', { class: 'history', 'data-testid': 'approval-history' });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'approval-error', hidden: true });
  const reasonId = `apr-reason-${a.id}`;
  const reason = /** @type {HTMLInputElement} */ (h('input', { id: reasonId, type: 'text', maxlength: '4096', autocomplete: 'off', required: true, placeholder: 'What you checked, or why not', 'data-testid': 'approval-reason-input' }));
  const approve = h('button', { type: 'button', class: 'btn approve', 'data-testid': 'approval-approve' }, '✓ Approve');
  const reject = h('button', { type: 'button', class: 'btn reject', 'data-testid': 'approval-reject' }, '✕ Reject');
  const form = h('form', { class: 'vote', novalidate: true, 'data-testid': 'approval-form', onsubmit: (e) => e.preventDefault() },
    h('label', { for: reasonId }, 'Reason for your decision', h('span', { class: 'req', 'aria-hidden': 'true' }, ' *')),
    reason, approve, reject);

  const el = h('article', { class: `card approval${prod ? ' prod' : ''}`, 'data-testid': 'approval-card', 'data-approval-id': a.id, 'aria-labelledby': titleId },
    h('header', { class: 'card-head' },
      envBadge(a.environment, { 'data-testid': 'approval-env' }),
      h('h3', { id: titleId },
        h('span', { class: 'agent', 'data-testid': 'approval-agent', text: a.agent ?? '?' }),
        h('span', { class: 'muted', text: ` wants to run ${KIND_LABEL[a.action?.kind] ?? a.action?.kind ?? 'an action'}` })),
      h('span', { class: 'spacer' }),
      votes,
      status),
    h('div', { class: 'action' },
      h('pre', { class: 'mono', 'data-testid': 'approval-action', tabindex: '0', 'aria-label': 'The action', text: actionText(a.action) }),
      actionExtras(a.action).length ? h('div', { class: 'action-extras mono', text: actionExtras(a.action).join('   ') }) : null),
    h('div', { class: 'card-grid' },
      h('dl', { class: 'facts' },
        h('dt', {}, 'Task'), h('dd', { 'data-testid': 'approval-task', text: a.task ?? '—' }),
        h('dt', {}, 'Agent’s reason'), a.reason
          ? h('dd', { class: 'quote', 'data-testid': 'approval-agent-reason', text: a.reason })
          : h('dd', { class: 'muted', 'data-testid': 'approval-agent-reason', text: 'none given' }),
        h('dt', {}, 'Asked by rule'), h('dd', { 'data-testid': 'approval-rule' },
          h('code', { class: 'rule-id', text: rule.id ?? '?' }),
          ruleLocation(rule) ? h('span', { class: 'loc', title: ruleLocation(rule), text: ` ${ruleLocation(rule)}` }) : null),
        h('dt', {}, 'Why'), h('dd', {}, h('ul', { class: 'reasons' }, (d.reasons ?? []).map((r) => h('li', { text: r }))))),
      history,
      h('div', { class: 'parts-box' },
        h('h4', {}, `What Gatehouse found: ${(d.parts ?? []).length} part${(d.parts ?? []).length === 1 ? '' : 's'}`),
        partsTable(d.parts ?? []))),
    live ? form : null,
    error,
    h('footer', { class: 'card-foot muted' },
      h('span', { text: a.id }), ' · session ', h('span', { class: 'mono', text: a.session }),
      ' · asked ', timeEl(a.created),
      h('span', { title: `the approval covers exactly this action: SHA-256 ${a.actionHash}`, text: ` · action ${String(a.actionHash ?? '').slice(0, 12)}` })));

  let current = a;
  const paint = (x) => {
    current = x;
    el.dataset.status = x.status;
    const approvals = (x.votes ?? []).filter((v) => v.vote === 'approve');
    fill(votes,
      h('span', { class: 'votes-n', text: `${approvals.length} of ${x.required} approval${x.required === 1 ? '' : 's'}` }),
      approvals.length ? h('span', { class: 'muted', text: ` (${approvals.map((v) => v.reviewer).join(', ')})` }) : null);
    votes.title = (x.votes ?? []).map((v) => `${v.reviewer} ${v.vote}d: ${v.reason}`).join('\n');
    if (live && x.status === 'pending') {
      fill(status, countdownEl(x.deadline ?? Date.parse(x.expires), 'approval', { 'data-testid': 'approval-countdown' }));
      const mine = (x.votes ?? []).some((v) => v.reviewer === state.reviewer);
      const over = (x.deadline ?? Date.parse(x.expires)) <= Date.now();
      approve.disabled = mine || over;
      reject.disabled = mine || over;
      if (mine) approve.title = 'you have voted; another reviewer must approve too';
    } else {
      fill(status, statusBadge(x.status));
      if (x.resolution) append(votes, [h('span', { class: 'resolution', text: ` — ${x.resolution}` })]);
    }
    const hist = state.histories.get(x.session);
    if (live) renderHistory(history, hist, x.id);
    else if (!history.firstChild) loadOneHistory(history, x);
  };
  paint(a);

  el.addEventListener('expired', () => {
    if (!live) return;
    approve.disabled = true;
    reject.disabled = true;
    showError(error, 'This approval has expired; the agent must ask again.');
    schedule('approvals');
  });

  const vote = async (kind) => {
    const text = reason.value.trim();
    if (text === '') {
      reason.setAttribute('aria-invalid', 'true');
      showError(error, `Give a reason to ${kind}: it goes into the audit trail.`);
      reason.focus();
      return;
    }
    reason.removeAttribute('aria-invalid');
    error.hidden = true;
    approve.disabled = true;
    reject.disabled = true;
    try {
      const settled = await api(`/v1/approvals/${encodeURIComponent(current.id)}/${kind}`, { method: 'POST', body: { reason: text } });
      reason.value = '';
      const verb = settled.status === 'approved' ? 'Approved' : settled.status === 'rejected' ? 'Rejected' : 'Vote recorded for';
      toast(`${verb}: ${current.agent ?? ''} · ${actionLine(current.action)}`, settled.status === 'rejected' ? 'bad' : 'good');
      if (settled.status === 'pending') paint({ ...settled, deadline: current.deadline });
    } catch (err) {
      await explainVoteError(err, current, error);
      approve.disabled = false;
      reject.disabled = false;
    }
    schedule('approvals');
  };
  approve.addEventListener('click', () => vote('approve'));
  reject.addEventListener('click', () => vote('reject'));
  reason.addEventListener('input', () => reason.removeAttribute('aria-invalid'));

  return { el, update: (x) => paint(x) };
}

/** Says why a vote failed, with who settled the approval when someone else did. */
async function explainVoteError(err, a, target) {
  if (err.status === 401) return;
  let message = err.message;
  if (err.code === 'conflict') {
    try {
      const now = await api(`/v1/approvals/${encodeURIComponent(a.id)}`);
      const settledBy = now.status === 'approved' || now.status === 'rejected' ? ' by ' : ': ';
      message = `Already ${now.status}${now.resolution ? `${settledBy}${now.resolution}` : ''}.`;
    } catch {
      message = `Already settled: ${err.message}`;
    }
  } else if (err.code === 'approval_expired') {
    message = 'This approval expired before your answer arrived; the agent must ask again.';
  } else if (err.code === 'already_voted') {
    message = 'You have already voted on this approval; another reviewer must answer.';
  } else if (err.status === 403) {
    message = `Refused: ${err.message}`;
  }
  showError(target, message);
}

function showError(el, message) {
  el.textContent = message;
  el.hidden = false;
}

function partsTable(parts) {
  if (parts.length === 0) return h('span', { class: 'muted', text: 'none (the action was not analyzed)' });
  return h('table', { class: 'parts', 'data-testid': 'approval-parts' },
    h('thead', {}, h('tr', {}, ['kind', 'where', 'verdict', 'rule', 'reasons'].map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, parts.map((p) => h('tr', { class: `part-${p.verdict}` },
      h('td', { class: 'nowrap', text: p.kind }),
      h('td', { class: 'origin', text: p.origin }),
      h('td', { class: 'nowrap' }, verdictBadge(p.verdict)),
      h('td', { class: 'nowrap' }, h('code', { text: p.rule })),
      h('td', { class: 'why' }, (p.reasons ?? []).map((r) => h('div', { text: r })))))));
}

function renderHistory(box, records, approvalId) {
  fill(box, h('h4', {}, 'Session history'));
  if (records === undefined) {
    append(box, [h('p', { class: 'muted', text: 'Loading…' })]);
    return;
  }
  if (records === null) {
    box.append(h('p', { class: 'muted', text: 'Unavailable.' }));
    return;
  }
  const shown = records.slice(0, HISTORY_SHOWN);
  box.append(h('ol', { class: 'timeline' }, shown.map((r) => h('li', { class: r.approval === approvalId ? 'this' : undefined, 'data-type': r.type },
    h('span', { class: 'when' }, timeEl(r.time)),
    h('span', { class: 'what' },
      h('span', { class: 'type', text: r.type }), ' ', verdictBadge(r.verdict),
      r.action ? h('code', { class: 'mono clip block', text: actionLine(r.action) }) : null,
      !r.action && (r.reviewer || r.by || r.reasons || r.error) ? h('span', { class: 'clip block muted', text: [r.reviewer ?? r.by, ...(r.reasons ?? []), r.error].filter(Boolean).join(': ') }) : null)))));
  if (records.length > shown.length) box.append(h('p', { class: 'muted small', text: `${records.length - shown.length} earlier records in the audit view` }));
  if (records.length === 0) box.append(h('p', { class: 'muted', text: 'No records.' }));
}

async function loadOneHistory(box, a) {
  renderHistory(box, undefined, a.id);
  try {
    renderHistory(box, (await api(`/v1/sessions/${encodeURIComponent(a.session)}`)).history ?? [], a.id);
  } catch {
    renderHistory(box, null, a.id);
  }
}

// ── sessions ──────────────────────────────────────────────────────────────────────────────────

function renderSessions() {
  syncList($('sessions-body'), state.sessions, (s) => s.id, sessionRow, sessionRows);
  $('sessions-empty').hidden = state.sessions.length > 0;
  $('sessions-body').closest('.table-wrap').hidden = state.sessions.length === 0;
  const active = state.sessions.filter((s) => s.state === 'active').length;
  $('sessions-summary').textContent = `${active} active of ${state.sessions.length}`;
  const badge = $('active-count');
  badge.textContent = String(active);
  badge.hidden = active === 0;
}

function sessionRow(s) {
  const cells = Array.from({ length: 7 }, () => h('td'));
  const reasonId = `halt-${s.id}`;
  const input = /** @type {HTMLInputElement} */ (h('input', { id: reasonId, type: 'text', maxlength: '4096', autocomplete: 'off', placeholder: 'Reason', 'aria-label': `Reason to halt session ${s.id}`, 'data-testid': 'session-halt-reason' }));
  const button = h('button', { type: 'button', class: 'btn small reject', 'data-testid': 'session-halt' }, 'Halt');
  const form = h('form', { class: 'halt', novalidate: true, onsubmit: (e) => e.preventDefault() }, input, button);
  const haltCell = h('td', { class: 'halt-cell' });
  const tr = h('tr', { 'data-testid': 'session-row', 'data-session-id': s.id }, cells, haltCell);
  let current = s;

  const paint = (x) => {
    current = x;
    tr.dataset.state = x.state;
    tr.classList.toggle('prod', /^prod/i.test(x.environment ?? ''));
    tr.classList.toggle('ended', x.state !== 'active');
    fill(cells[0], statusBadge(x.state));
    fill(cells[1], h('strong', { text: x.agent }), h('div', { class: 'mono muted small', text: x.id }));
    fill(cells[2], envBadge(x.environment));
    cells[3].className = 'wrap task';
    cells[3].textContent = x.task;
    fill(cells[4], timeEl(x.created));
    fill(cells[5], x.state === 'active' ? countdownEl(Date.parse(x.expires), 'session') : timeEl(x.expires));
    cells[6].className = 'wrap';
    fill(cells[6], x.stateReason ? h('span', { 'data-testid': 'session-state-reason', text: x.stateReason }) : null,
      x.stateBy ? h('div', { class: 'muted small', text: `by ${x.stateBy}${x.stateTime ? ` at ${timeText(x.stateTime)}` : ''}` }) : null);
    // an active session can be halted; a halted one resumed (only a reviewer can)
    const resumable = x.state === 'halted' && Date.parse(x.expires) > Date.now();
    button.textContent = resumable ? 'Resume' : 'Halt';
    button.className = `btn small ${resumable ? 'approve' : 'reject'}`;
    button.dataset.testid = resumable ? 'session-resume' : 'session-halt';
    input.setAttribute('aria-label', `Reason to ${resumable ? 'resume' : 'halt'} session ${x.id}`);
    if (x.state === 'active' || resumable) {
      if (form.parentNode !== haltCell) haltCell.append(form);
    } else {
      form.remove();
    }
  };
  paint(s);

  const halt = async () => {
    const errorBox = $('session-error');
    const verb = current.state === 'halted' ? 'resume' : 'halt';
    const reason = input.value.trim();
    if (reason === '') {
      input.setAttribute('aria-invalid', 'true');
      showError(errorBox, `Give a reason to ${verb} ${current.agent}'s session: the agent is told it, and it goes into the audit trail.`);
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    errorBox.hidden = true;
    button.disabled = true;
    try {
      const changed = await api(`/v1/sessions/${encodeURIComponent(current.id)}/${verb}`, { method: 'POST', body: { reason } });
      input.value = '';
      paint(changed);
      if (verb === 'halt') toast(`Halted ${current.agent}'s session: every further action is denied.`, 'bad');
      else toast(`Resumed ${current.agent}'s session: it may act again.`);
    } catch (err) {
      if (err.status !== 401) showError(errorBox, err.code === 'conflict' ? `That session is ${err.detail?.state ?? 'no longer there'}.` : `Could not ${verb}: ${err.message}`);
    } finally {
      button.disabled = false;
    }
    schedule('sessions', 'approvals');
  };
  button.addEventListener('click', halt);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      halt();
    }
  });
  return { el: tr, update: paint };
}

// ── audit ─────────────────────────────────────────────────────────────────────────────────────

function renderAudit(records, verify) {
  const chain = $('audit-chain');
  chain.dataset.ok = String(verify.ok);
  chain.className = `chain ${verify.ok ? 'ok' : 'bad'}`;
  const checkpoint = verify.lastGoodCheckpoint === null ? 'no signed checkpoint yet' : `last good signed checkpoint at record ${verify.lastGoodCheckpoint}`;
  if (verify.ok) {
    fill(chain, h('strong', { text: '✓ Chain intact' }), h('span', { text: ` — ${verify.records} records verified, ${checkpoint}.` }));
  } else {
    fill(chain,
      h('strong', { text: '✕ TAMPERED — the audit chain does not verify' }),
      h('span', { text: ` — ${verify.records} records, ${checkpoint}. Do not rely on this trail until each problem below is explained.` }),
      h('ul', { class: 'problems', 'data-testid': 'audit-problems' }, (verify.problems ?? []).map((p) => h('li', {}, h('code', { text: `#${p.seq} ${p.kind}` }), ` ${p.message}`))));
  }
  $('audit-flag').hidden = verify.ok;

  const body = clear($('audit-body'));
  for (const r of records) {
    body.append(h('tr', { 'data-testid': 'audit-row', 'data-seq': String(r.seq), 'data-type': r.type, class: r.verdict === 'deny' || /halted|tampered|failed|rejected/.test(r.type) ? 'row-bad' : undefined },
      h('td', { class: 'num', text: r.seq }),
      h('td', {}, timeEl(r.time)),
      h('td', {}, h('span', { class: 'type', text: r.type })),
      h('td', { class: 'mono small', text: r.session ?? '' }),
      h('td', { text: r.agent ?? '' }),
      h('td', {}, verdictBadge(r.verdict)),
      h('td', { class: 'nowrap' }, r.rule?.id ? h('code', { title: ruleLocation(r.rule) || undefined, text: r.rule.id }) : null),
      h('td', { class: 'detail' }, recordDetail(r)),
      h('td', { text: r.reviewer ?? (Array.isArray(r.reviewers) ? r.reviewers.join(', ') : r.by ?? '') })));
  }
}

// ── notifications ─────────────────────────────────────────────────────────────────────────────

function renderNotifications() {
  const failed = state.notifications.filter((n) => n.status === 'failed');
  const count = $('failed-count');
  count.textContent = String(failed.length);
  count.hidden = failed.length === 0;

  const banner = $('notify-banner');
  if (failed.length === 0) {
    banner.hidden = true;
  } else {
    const last = failed[0];
    fill(banner,
      h('strong', { text: `⚠ ${failed.length} approval notification${failed.length === 1 ? '' : 's'} could not be delivered` }),
      h('span', { text: ` — reviewers may not have been alerted in chat. Latest: ${last.target} for ${last.approval}: ${last.lastError ?? 'failed'} (${last.attempts} attempts). ` }),
      h('a', { href: '#/notifications', text: 'See notifications' }));
    banner.hidden = false;
  }

  const body = clear($('notifications-body'));
  for (const n of state.notifications) {
    body.append(h('tr', { 'data-testid': 'notification-row', 'data-status': n.status, class: n.status === 'failed' ? 'row-bad' : undefined },
      h('td', {}, statusBadge(n.status)),
      h('td', { class: 'mono' }, h('a', { href: `#/approvals/${encodeURIComponent(n.approval)}`, text: n.approval })),
      h('td', { class: 'mono', text: n.target }),
      h('td', { class: 'num', text: n.attempts }),
      h('td', { class: 'wrap', text: n.lastError ?? '' }),
      h('td', {}, timeEl(n.updated))));
  }
  $('notifications-empty').hidden = state.notifications.length > 0;
  body.closest('.table-wrap').hidden = state.notifications.length === 0;
}

// ── toast ─────────────────────────────────────────────────────────────────────────────────────

let toastTimer = null;
function toast(message, tone = 'good') {
  const el = $('toast');
  el.textContent = message;
  el.className = `toast ${tone}`;
  el.hidden = false;
  if (toastTimer !== null) window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => {
    el.hidden = true;
  }, 6000);
}

// ── wiring ────────────────────────────────────────────────────────────────────────────────────

function wireStatic() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = /** @type {HTMLInputElement} */ ($('signin-token')).value.trim();
    if (token === '') {
      showSignIn('Paste your reviewer token.');
      return;
    }
    signIn(token);
  });
  $('signout').addEventListener('click', signOut);
  $('audit-reload').addEventListener('click', () => LOADERS.audit().catch(showLoadError));
  window.addEventListener('hashchange', route);
  window.setInterval(tick, 1000);
}

boot();
