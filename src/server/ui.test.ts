import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { BIN, gatehouse } from '../testing/process.js';

/**
 * The reviewers' page end to end: the real gateway as a child process, agents as plain HTTP
 * clients, a reviewer in Debian's Chromium (never a downloaded browser). One shared browser; the
 * steps run in order and build on each other.
 */

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOTS = join(ROOT, 'screenshots');
const NO_CHROMIUM = existsSync(CHROMIUM) ? false : `${CHROMIUM} does not exist: install Debian's chromium (apt-get install chromium) to run the reviewers' page test`;

interface Started {
  listening: string;
  reviewer: { name: string; token: string; signIn: string };
}

interface Reply {
  status: number;
  body: any;
}

describe("the reviewers' page in a browser", { skip: NO_CHROMIUM }, () => {
  let dir: string;
  let server: ChildProcess;
  let serverLog = '';
  let url: string;
  let started: Started;
  let agentToken: string;
  let session: { session: string; token: string };
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const approvals: { remove?: string; plan?: string } = {};
  const DELETE = { kind: 'sql', sql: 'DELETE FROM orders;', reason: 'remove old data' };
  const UPDATE = { kind: 'sql', sql: "UPDATE users SET plan = 'free';", reason: 'reset every plan for the migration' };

  /** An HTTP call as an agent or script makes it. A stream that opens (200) is closed at once. */
  const call = async (method: string, path: string, token?: string, body?: unknown): Promise<Reply> => {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
    if (res.headers.get('content-type')?.includes('text/event-stream')) {
      await res.body?.cancel();
      return { status: res.status, body: null };
    }
    return { status: res.status, body: await res.json().catch(() => null) };
  };
  const act = (action: unknown) => call('POST', `/v1/sessions/${session.session}/actions`, session.token, action);
  /** A pending approval's card in the inbox list. */
  const card = (id: string) => page.locator(`[data-testid="pending-list"] [data-testid="approval-card"][data-approval-id="${id}"]`);
  const text = async (selector: string, within = page.locator('body')) => ((await within.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-ui-'));
    // a webhook that can never be delivered (fetch refuses port 9), retried fast: the page must show the failure
    server = spawn(BIN, ['serve', '--port', '0', '--json', '--data', join(dir, '.gatehouse'), '--webhook', 'http://127.0.0.1:9/hook', '--webhook-retry-ms', '5'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stderr?.on('data', (d: Buffer) => {
      serverLog += d.toString();
    });
    started = await new Promise<Started>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the gateway did not start in 15 s:\n${serverLog}`)), 15_000);
      const lines = createInterface({ input: server.stdout! });
      lines.once('line', (line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Started);
      });
      server.once('exit', (code) => reject(new Error(`the gateway exited (${code}) before it started:\n${serverLog}`)));
    });
    url = started.listening;

    const added = gatehouse(['agent', 'add', 'demo', '--environment', 'staging', '--json', '--data', join(dir, '.gatehouse')]);
    assert.equal(added.status, 0, added.stderr);
    agentToken = (JSON.parse(added.stdout) as { token: string }).token;
    const opened = await call('POST', '/v1/sessions', agentToken, { task: 'clean up orders older than 90 days' });
    assert.equal(opened.status, 201, JSON.stringify(opened.body));
    session = opened.body;
    const asked = await act(DELETE);
    assert.equal(asked.body.verdict, 'ask', JSON.stringify(asked.body));
    approvals.remove = asked.body.approval.id;

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('pageerror', (err) => pageErrors.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) pageErrors.push(`CSP: ${msg.text()}`);
    });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('signs in from the link, and takes the token out of the address bar', async () => {
    await page.goto(started.reviewer.signIn);
    await page.locator('[data-testid="reviewer-name"]', { hasText: 'admin' }).waitFor();
    assert.ok(!page.url().includes('token='), `the token is still in ${page.url()}`);
    await page.locator('[data-testid="conn-status"][data-state="live"]').waitFor();
  });

  it('shows the pending approval with what a reviewer needs to judge it', async () => {
    const c = card(approvals.remove!);
    await c.waitFor();
    assert.equal(await c.getAttribute('data-status'), 'pending');
    assert.equal(await text('[data-testid="approval-action"]', c), 'DELETE FROM orders;');
    assert.match(await text('[data-testid="approval-rule"]', c), /^sql-unbounded-write \S*default\.yaml:\d+$/);
    assert.equal(await text('[data-testid="approval-agent-reason"]', c), 'remove old data');
    assert.equal(await text('[data-testid="approval-agent"]', c), 'demo');
    assert.equal(await text('[data-testid="approval-env"]', c), 'staging');
    assert.equal(await text('[data-testid="approval-task"]', c), 'clean up orders older than 90 days');
    assert.match(await text('[data-testid="approval-countdown"]', c), /^\d+:\d\d left$/);
    assert.equal(await text('[data-testid="approval-votes"]', c), '0 of 1 approval');
    assert.match((await c.locator('[data-testid="approval-parts"] tbody').innerText()).replace(/\s+/g, ' '), /^sql the SQL ask sql-unbounded-write updates or deletes every row/i);
    await c.locator('[data-testid="approval-history"] li[data-type="approval.created"]').waitFor();
    assert.equal(await page.locator('[data-testid="pending-count"]').textContent(), '1');

    // the webhook could not be delivered: the inbox says so
    const banner = page.locator('[data-testid="notify-banner"]');
    await banner.waitFor();
    assert.match(await text('[data-testid="notify-banner"]'), /could not be delivered/);

    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, 'inbox-pending-approval.png'), fullPage: true });
  });

  it('keeps the sign-in in an HttpOnly SameSite=Strict cookie and refuses changes without the CSRF header', async () => {
    const cookie = (await context.cookies(url)).find((c) => c.name === 'gatehouse_review');
    assert.ok(cookie, 'no sign-in cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(await page.evaluate('document.cookie'), '');
    const forged = await page.evaluate(async (id) => {
      const res = await fetch(`/v1/approvals/${id}/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'no csrf header' }) });
      return { status: res.status, body: (await res.json()) as { error: { code: string } } };
    }, approvals.remove!);
    assert.equal(forged.status, 403);
    assert.equal(forged.body.error.code, 'forbidden');
    assert.equal((await call('GET', `/v1/approvals/${approvals.remove}`, started.reviewer.token)).body.status, 'pending');
  });

  it('refuses agent and session tokens on the reviewers’ endpoints', async () => {
    for (const token of [agentToken, session.token, undefined]) {
      assert.equal((await call('GET', '/v1/approvals', token)).status, 401);
      assert.equal((await call('GET', '/v1/events', token)).status, 401);
    }
  });

  it('shows a new approval live, without a reload', async () => {
    await page.evaluate('window.__sameDocument = true');
    // a reviewer is halfway through typing a reason when the new approval arrives
    const typing = card(approvals.remove!).locator('[data-testid="approval-reason-input"]');
    await typing.fill('half-typed');
    const asked = await act(UPDATE);
    assert.equal(asked.body.verdict, 'ask', JSON.stringify(asked.body));
    approvals.plan = asked.body.approval.id;
    const c = card(approvals.plan!);
    await c.waitFor();
    assert.equal(await text('[data-testid="approval-action"]', c), "UPDATE users SET plan = 'free';");
    assert.equal(await page.evaluate('window.__sameDocument'), true, 'the page reloaded');
    assert.equal(await typing.inputValue(), 'half-typed');
    assert.equal(await typing.evaluate((el: any) => el === el.ownerDocument.activeElement), true, 'the reason field lost focus');
    await page.locator('[data-testid="pending-count"]', { hasText: '2' }).waitFor();
  });

  it('approves with a reason, and the agent waiting on it proceeds once', async () => {
    const c = card(approvals.remove!);
    // a reason is required
    await c.locator('[data-testid="approval-reason-input"]').fill('  ');
    await c.locator('[data-testid="approval-approve"]').click();
    await c.locator('[data-testid="approval-error"]', { hasText: 'Give a reason' }).waitFor();
    assert.equal(await c.getAttribute('data-status'), 'pending');

    const waiting = call('GET', `/v1/approvals/${approvals.remove}/wait?timeout=10`, session.token);
    await c.locator('[data-testid="approval-reason-input"]').fill('checked with the owner: the table is a copy');
    await c.locator('[data-testid="approval-approve"]').click();
    await c.waitFor({ state: 'detached' });
    await page.locator(`[data-testid="settled-row"][data-approval-id="${approvals.remove}"][data-status="approved"]`).waitFor();
    await page.locator('[data-testid="toast"]', { hasText: 'Approved' }).waitFor();

    const settled = await waiting;
    assert.equal(settled.status, 200);
    assert.equal(settled.body.status, 'approved');
    assert.equal(settled.body.votes[0].reviewer, 'admin');
    const again = await act(DELETE);
    assert.equal(again.body.verdict, 'allow', JSON.stringify(again.body));
  });

  it('shows the audit chain intact, with the approval in it', async () => {
    await page.locator('[data-testid="nav-audit"]').click();
    await page.locator('[data-testid="audit-chain"][data-ok="true"]').waitFor();
    assert.match(await text('[data-testid="audit-chain"]'), /Chain intact/);
    const approved = page.locator('[data-testid="audit-row"][data-type="approval.approved"]');
    await approved.waitFor();
    assert.equal(((await approved.locator('td').last().textContent()) ?? '').trim(), 'admin');
    assert.match((await approved.textContent()) ?? '', /checked with the owner/);
    await page.locator('[data-testid="audit-row"][data-type="approval.created"]').first().waitFor();
    // the second DELETE went through on the approval: a decision record with allow
    await page.locator('[data-testid="audit-row"][data-type="decision"]', { hasText: 'allow' }).first().waitFor();
  });

  it('rejects the other from its deep link', async () => {
    await page.evaluate(`location.hash = '#/approvals/${approvals.plan}'`);
    const c = card(approvals.plan!);
    await page.locator(`[data-testid="approval-card"].is-selected[data-approval-id="${approvals.plan}"]`).waitFor();
    await c.locator('[data-testid="approval-reason-input"]').fill('resetting every plan is not part of the task');
    await c.locator('[data-testid="approval-reject"]').click();
    await c.waitFor({ state: 'detached' });
    await page.locator(`[data-testid="settled-row"][data-approval-id="${approvals.plan}"][data-status="rejected"]`).waitFor();
    // answering again (from another tab, say) says who settled it
    const late = await call('POST', `/v1/approvals/${approvals.plan}/approve`, started.reviewer.token, { reason: 'too late' });
    assert.equal(late.status, 409);
    await page.locator('[data-testid="pending-empty"]').waitFor();
    // the deep link now shows how it was settled
    await page.locator(`[data-testid="selected-approval"] [data-approval-id="${approvals.plan}"][data-status="rejected"]`).waitFor();
  });

  it('halts the session from the Sessions view, and the next action is denied with the reason', async () => {
    await page.locator('[data-testid="nav-sessions"]').click();
    const row = page.locator(`[data-testid="session-row"][data-session-id="${session.session}"]`);
    await row.locator('[data-testid="session-halt-reason"]').fill('stop: the agent tried to empty orders');
    await row.locator('[data-testid="session-halt"]').click();
    await page.locator(`[data-testid="session-row"][data-session-id="${session.session}"][data-state="halted"]`).waitFor();
    assert.match(await text('[data-testid="session-state-reason"]', row), /stop: the agent tried to empty orders/);

    const denied = await act({ kind: 'shell', command: 'ls', reason: 'look around' });
    assert.equal(denied.body.verdict, 'deny');
    assert.match(denied.body.reasons.join(' '), /halted: stop: the agent tried to empty orders/);

    // only a reviewer resumes it: the halted row offers Resume, with a reason
    await row.locator('[data-testid="session-halt-reason"]').fill('checked with the team: orders are safe');
    await row.locator('[data-testid="session-resume"]').click();
    await page.locator(`[data-testid="session-row"][data-session-id="${session.session}"][data-state="active"]`).waitFor();
    assert.match(await text('[data-testid="session-state-reason"]', row), /resumed: checked with the team/);
    const after = await act({ kind: 'shell', command: 'ls', reason: 'look around' });
    assert.notEqual(after.body.rule.id, 'gatehouse:session-halted');
  });

  it('lists the failed notifications, signs out, and signs in again with a pasted token', async () => {
    await page.locator('[data-testid="nav-notifications"]').click();
    await page.locator('[data-testid="notification-row"][data-status="failed"]').first().waitFor();

    await page.locator('[data-testid="signout"]').click();
    await page.locator('[data-testid="signin-form"]').waitFor();
    assert.equal(await page.evaluate(async () => (await fetch('/v1/me')).status), 401);

    await page.locator('[data-testid="signin-token"]').fill('gatehouse_reviewer_wrong');
    await page.locator('[data-testid="signin-submit"]').click();
    await page.locator('[data-testid="signin-error"]', { hasText: 'not accepted' }).waitFor();
    await page.locator('[data-testid="signin-token"]').fill(started.reviewer.token);
    await page.locator('[data-testid="signin-submit"]').click();
    await page.locator('[data-testid="reviewer-name"]', { hasText: 'admin' }).waitFor();
    assert.deepEqual(pageErrors, []);
  });
});
