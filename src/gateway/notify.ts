import type { ApprovalRecord, SessionRecord } from '../store/sqlite/store.js';
import type { Gateway } from './gateway.js';

/**
 * Notifications of new approvals and of halted sessions: a Slack-compatible webhook (an incoming-webhook JSON body with
 * `text` and `blocks`, plus a `gatehouse` object for other receivers), retried with exponential
 * backoff. Each delivery's state is kept in the store for the page; a delivery that fails for good
 * is an audit record (`notification.failed`) and an event.
 */

export interface WebhookOptions {
  /** The receiver, e.g. a Slack incoming-webhook URL. Only its origin is ever shown or recorded. */
  url: string;
  /** Tries in all, 1–10 (default 5). */
  attempts?: number;
  /** Milliseconds before the first retry, doubled for each later one (default 1000). */
  baseDelayMs?: number;
  /** Milliseconds each try may take (default 5000). */
  timeoutMs?: number;
}

/** One line of what an action does, for a message; already redacted by the gateway. */
function describeAction(action: unknown): string {
  const a = action as Record<string, unknown>;
  switch (a.kind) {
    case 'shell':
      return String(a.command);
    case 'sql':
      return String(a.sql);
    case 'http':
      return `${String(a.method)} ${String(a.url)}`;
    case 'mcp_tool':
      return `${String(a.server)}.${String(a.tool)} ${JSON.stringify(a.arguments ?? {})}`;
    case 'file_read':
      return `read ${String(a.path)}`;
    case 'file_write':
      return `write ${String(a.path)}`;
    default:
      return JSON.stringify(a);
  }
}

const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The webhook body for a new approval. */
function approvalMessage(a: ApprovalRecord, s: SessionRecord, url: string): Record<string, unknown> {
  const what = describeAction(a.action);
  const clipped = what.length > 600 ? `${what.slice(0, 600)}…` : what;
  const rule = (a.decision as { rule?: { id?: string } }).rule?.id ?? 'unknown';
  const headline = `Approval needed: ${s.agent} (${s.environment}) wants to run a ${String((a.action as { kind?: string }).kind)} action held by rule ${rule}`;
  return {
    text: `${slackEscape(headline)}. Review: <${url}|${a.id}> (expires ${a.expires})`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${slackEscape(headline)}*\nTask: ${slackEscape(s.task.slice(0, 300))}\nAgent's reason: ${slackEscape((a.reason ?? '(none given)').slice(0, 300))}` } },
      { type: 'section', text: { type: 'mrkdwn', text: '```' + slackEscape(clipped).replace(/```/g, "'''") + '```' } },
      { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Review' }, url }] },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${a.id} · expires ${a.expires} · ${a.required} reviewer${a.required > 1 ? 's' : ''} needed` }] },
    ],
    gatehouse: { approval: a.id, session: s.id, agent: s.agent, environment: s.environment, rule, action: clipped, reason: a.reason, expires: a.expires, required: a.required, url },
  };
}

/** The webhook body for a halted session: reviewers learn that a task stopped, and why. */
function haltMessage(s: SessionRecord, url: string): Record<string, unknown> {
  const headline = `Session halted: ${s.agent} (${s.environment}) was stopped by ${s.stateBy ?? 'gatehouse'}`;
  const why = (s.stateReason ?? '').slice(0, 600);
  return {
    text: `${slackEscape(headline)}: ${slackEscape(why)}. <${url}|${s.id}>`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${slackEscape(headline)}*\nTask: ${slackEscape(s.task.slice(0, 300))}\nWhy: ${slackEscape(why)}` } },
      { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open the session' }, url }] },
    ],
    gatehouse: { halted: s.id, session: s.id, agent: s.agent, environment: s.environment, by: s.stateBy, reason: why, url },
  };
}

export class WebhookNotifier {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly sent = new Set<string>();
  private readonly target: string;
  private readonly stopping = new AbortController();

  constructor(private readonly gateway: Gateway, private readonly options: WebhookOptions) {
    this.target = `${new URL(options.url).origin}/…`;
  }

  /**
   * Sends a message for each approval the gateway creates from now on. Deliveries a previous run
   * left unfinished (it was killed) are marked failed, so the page shows them.
   */
  start(): void {
    try {
      this.gateway.store.failUnfinishedNotifications('the gateway stopped before the delivery finished', new Date().toISOString());
    } catch {
      // the store is failing; requests report it
    }
    this.gateway.on('approval', (a) => {
      if (a.status !== 'pending') {
        this.sent.delete(a.id);
        return;
      }
      if (this.stopping.signal.aborted || a.votes.length > 0 || this.sent.has(a.id)) return;
      this.sent.add(a.id);
      const session = this.gateway.store.session(a.session);
      if (session === undefined) return;
      this.send(a.id, a.session, approvalMessage(a, session, this.gateway.approvalLink(a).url));
    });
    this.gateway.on('halted', (s) => {
      if (this.stopping.signal.aborted) return;
      this.send(s.id, s.id, haltMessage(s, `${this.gateway.publicUrl}/#/sessions/${s.id}`));
    });
  }

  private send(subject: string, session: string, message: Record<string, unknown>): void {
    const p = this.deliver(subject, session, JSON.stringify(message)).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Stops new deliveries and waits for those under way (their retries are cut short). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Delivers one message about `subject` (an approval id, or the id of a halted session). */
  private async deliver(subject: string, session: string, body: string): Promise<void> {
    const store = this.gateway.store;
    const a = { id: subject, session };
    const attempts = Math.min(Math.max(this.options.attempts ?? 5, 1), 10);
    const base = this.options.baseDelayMs ?? 1000;
    let id: number;
    try {
      id = store.insertNotification(a.id, this.target, new Date().toISOString());
    } catch {
      return; // the store is failing; the approval itself is on the page
    }
    let error = 'not sent';
    for (let n = 1; n <= attempts; n++) {
      try {
        const res = await fetch(this.options.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.record(id, a, 'delivered', n, null);
          return;
        }
        error = `HTTP ${res.status}`;
      } catch (err) {
        error = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
      }
      const last = n === attempts || this.stopping.signal.aborted;
      this.record(id, a, last ? 'failed' : 'sending', n, last && n < attempts ? `${error}; the gateway stopped before retrying` : error);
      if (last) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, base * 2 ** (n - 1));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.stopping.signal.addEventListener('abort', done, { once: true });
      });
      if (this.stopping.signal.aborted) {
        this.record(id, a, 'failed', n, `${error}; the gateway stopped before retrying`);
        return;
      }
    }
  }

  private record(id: number, a: { id: string; session: string }, status: 'sending' | 'delivered' | 'failed', attempts: number, error: string | null): void {
    const time = new Date().toISOString();
    try {
      this.gateway.store.transaction(() => {
        this.gateway.store.updateNotification(id, status, attempts, error, time);
        if (status !== 'sending') this.gateway.store.audit.append({ time, type: `notification.${status}`, ...(a.id === a.session ? {} : { approval: a.id }), session: a.session, target: this.target, attempts, error: error ?? undefined });
      });
    } catch {
      // the store is failing; nothing more to do here
    }
    this.gateway.emit('notification', { approval: a.id, status, error });
  }
}
