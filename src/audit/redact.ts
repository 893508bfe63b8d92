import { lintSource } from '@secretlint/core';
import { secretLintProfiler } from '@secretlint/profiler';
import { creator as pattern } from '@secretlint/secretlint-rule-pattern';
import { creator as recommend } from '@secretlint/secretlint-rule-preset-recommend';

/**
 * Redaction: secrets in action text are masked before anything is stored or shown (DESIGN rule 5).
 * secretlint's recommended preset finds most provider tokens and connection strings; pattern rules
 * add what it misses (Stripe keys, JWTs, AWS keys including the documented example keys, which the
 * preset deliberately ignores, and `password=` style assignments).
 */

// secretlint's profiler (on by default, one instance per process) records ~60 performance marks
// per lint, keeps every one, and scans them all on each new mark: each redaction is slower than
// the last and the heap grows ~19 KB a call. A gateway lints every request; it records no marks.
// INVARIANT: this module is the only one that loads secretlint, so the patch precedes every lint.
secretLintProfiler.mark = () => undefined;

const PATTERNS = [
  { name: 'gatehouse-token', pattern: '/\\bgatehouse_(agent|session|reviewer|phantom)_[A-Za-z0-9_-]{43}/' },
  { name: 'stripe-key', pattern: '/\\b[rsp]k_(live|test)_[0-9a-zA-Z]{16,}\\b/' },
  { name: 'jwt', pattern: '/\\beyJ[0-9A-Za-z_-]{8,}\\.[0-9A-Za-z_-]{8,}\\.[0-9A-Za-z_-]{8,}\\b/' },
  { name: 'aws-access-key-id', pattern: '/\\b(AKIA|ASIA)[0-9A-Z]{16}\\b/' },
  { name: 'google-api-key', pattern: '/\\bAIza[0-9A-Za-z_-]{35}\\b/' },
  { name: 'slack-token', pattern: '/\\bxox[abposr]-[0-9A-Za-z-]{10,}/' },
  { name: 'github-token', pattern: '/\\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\\b/' },
  // user:password@ in a URL (postgres://app:…@db/shop with a literal password where the … is); a `$VAR` or `${…}` password is not a literal credential
  { name: 'connection-string-password', pattern: '/(?<=\\b[a-z][a-z0-9+.-]{1,20}:\\/\\/[^\\s:/@"\']{1,64}:)[^\\s@/"\'$`{}]{3,}(?=@)/i' },
  { name: 'aws-secret-access-key', pattern: '/(?<=aws_secret_access_key[\\s"\':=]{1,5})[A-Za-z0-9/+=]{40}/i' },
  // the value stops before anything that runs: `$(`, backticks, pipes, `;`, `&` stay visible to the reviewer
  { name: 'password-assignment', pattern: '/(?<=\\b[A-Za-z_]*(password|passwd|secret|token|api_?key)[A-Za-z_]*\\s*[=:]\\s*["\']?)[^\\s"\'&;$`|()<>]{6,}/i' },
  { name: 'bearer-token', pattern: '/(?<=\\bBearer\\s+)[A-Za-z0-9._~+\\/=-]{12,}/' },
  { name: 'password-option', pattern: '/(?<=\\s-p)[^\\s"\'&;$`|()<>]{6,}/' },
];

/** Keys whose string values are secrets whatever they look like (`env.PGPASSWORD`, `headers.Authorization`, `arguments.api_key`). */
const SECRET_KEY = /pass(word|wd|phrase)?$|^pw$|secret|token|api[_-]?key|apikey|authorization|^(set-)?cookie$|credential|private[_-]?key|access[_-]?key|session[_-]?id|^auth$/i;
/** Keyed secrets at least this long are also masked wherever else they appear in the value. */
const MIN_KNOWN = 8;

const CONFIG = {
  rules: [
    { id: '@secretlint/secretlint-rule-preset-recommend', rule: recommend },
    { id: '@secretlint/secretlint-rule-pattern', rule: pattern, options: { patterns: PATTERNS } },
  ],
};

export interface SecretSpan {
  start: number;
  end: number;
  /** The rule that found it, e.g. `GITHUB_TOKEN`, `stripe-key`. */
  kind: string;
}

/** Where secrets are in `text` (UTF-16 offsets), merged where they overlap. */
export async function findSecrets(text: string): Promise<SecretSpan[]> {
  if (text.length === 0) return [];
  const result = await lintSource({ source: { filePath: '/gatehouse/action', content: text, contentType: 'text' }, options: { config: CONFIG as never } });
  const spans = result.messages
    .map((m) => ({ start: m.range[0], end: m.range[1], kind: m.ruleId === '@secretlint/secretlint-rule-pattern' ? String((m.data as { PATTERN_NAME?: string } | undefined)?.PATTERN_NAME ?? m.messageId) : m.messageId }))
    .sort((a, b) => a.start - b.start);
  const merged: SecretSpan[] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else merged.push({ ...s });
  }
  return merged;
}

/** `text` with every secret replaced by `[REDACTED:kind]`. */
export async function redactText(text: string): Promise<string> {
  return replaceSpans(text, await findSecrets(text));
}

// Joins a value's strings for one secretlint pass; no secret pattern crosses a line of its own.
const SEPARATOR = '\n\u0000\n';

/**
 * secretlint costs ~100 µs a call whatever the length, so the texts asked for in one turn of the
 * event loop go through one call together (the gateway redacts every concurrent request).
 * A span that crosses from one text into the next is cut at the boundary and kept in both.
 */
let queued: { text: string; resolve: (spans: SecretSpan[]) => void; reject: (err: unknown) => void }[] = [];

function findSecretsBatched(text: string): Promise<SecretSpan[]> {
  return new Promise((resolve, reject) => {
    queued.push({ text, resolve, reject });
    if (queued.length === 1) setImmediate(() => void flushQueued());
  });
}

async function flushQueued(): Promise<void> {
  const items = queued;
  queued = [];
  try {
    const spans = await findSecrets(items.map((i) => i.text).join(SEPARATOR));
    let offset = 0;
    for (const item of items) {
      const start = offset;
      const end = start + item.text.length;
      item.resolve(spans.filter((s) => s.start < end && s.end > start).map((s) => ({ kind: s.kind, start: Math.max(s.start, start) - start, end: Math.min(s.end, end) - start })));
      offset = end + SEPARATOR.length;
    }
  } catch (err) {
    for (const item of items) item.reject(err);
  }
}

/** A secret found in a value: its text as written, and the rule that found it. */
export interface FoundSecret {
  text: string;
  kind: string;
}

/**
 * Kinds that are only a guess at a secret (`password=…` in prose, `-p…` after a space): masked, but
 * not taken as proof that a credential was used.
 */
const WEAK_KINDS = new Set(['password-assignment', 'password-option']);

/** Whether a found secret counts as a credential in use (every kind but the weak guesses). */
export function isCredential(found: FoundSecret): boolean {
  return !WEAK_KINDS.has(found.kind) && !found.kind.startsWith('key:');
}

/**
 * A copy of a JSON value with every string redacted; keys are kept. All strings go through one
 * secretlint pass (joined by separators), so the cost is one lint per value, not per string.
 * Strings under secret-named keys are masked whole, and linted too.
 * @param found when given, receives every secret found, as written (never store it: it is the secret).
 */
export async function redactValue<T>(input: T, found?: FoundSecret[]): Promise<T> {
  const strings: string[] = [];
  const keys: (string | null)[] = [];
  collect(input, null, strings, keys);
  if (strings.length === 0) return input;
  const joined = strings.join(SEPARATOR);
  const spans = await findSecretsBatched(joined);
  const keyed = strings.flatMap((t, i) => (keys[i] === null ? [] : [{ text: t.replace(/^(Bearer|Basic|token)\s+/i, ''), kind: `key:${(keys[i] as string).slice(0, 40)}` }]));
  const linted = spans.map((sp) => ({ text: joined.slice(sp.start, sp.end), kind: sp.kind }));
  found?.push(...linted, ...keyed);
  if (spans.length === 0 && keyed.length === 0) return input;
  const known = [...keyed.filter((k) => k.text.length >= MIN_KNOWN), ...linted];
  const redacted = replaceSpans(joined, spans).split(SEPARATOR);
  // INVARIANT: a span never covers a separator (secret patterns do not match NUL), so the split gives back one string per input
  if (redacted.length !== strings.length) return rebuild(input, strings.map(() => '[REDACTED]'), { i: 0 });
  return rebuild(input, redacted.map((r, i) => (keys[i] !== null ? `[REDACTED:key:${(keys[i] as string).slice(0, 40)}]` : maskClipped(r, known))), { i: 0 });
}

/** Shortest prefix of a known secret that is masked where a clipped copy of it ends in `…`. */
const MIN_PREFIX = 6;

/**
 * Masks what is left of known secrets in text derived from the same value: explanations quote the
 * action clipped (a Stripe key cut to its first characters and `…`), and a clipped secret no longer matches its pattern.
 */
function maskClipped(text: string, known: { text: string; kind: string }[]): string {
  let out = text;
  for (const k of known) {
    const head = k.text.slice(0, Math.min(MIN_PREFIX, k.text.length));
    let from = 0;
    for (let i = out.indexOf(head, from); i >= 0; i = out.indexOf(head, from)) {
      let n = head.length;
      while (n < k.text.length && out[i + n] === k.text[n]) n++;
      const whole = n === k.text.length;
      if (whole || out[i + n] === '…' || i + n === out.length) {
        const mask = `[REDACTED:${k.kind}]`;
        out = out.slice(0, i) + mask + out.slice(i + n);
        from = i + mask.length;
      } else from = i + 1;
    }
  }
  return out;
}

/** Every string of a value in order, and for each the secret-looking key it sits directly under (or null). */
function collect(value: unknown, key: string | null, out: string[], keys: (string | null)[]): void {
  if (typeof value === 'string') {
    out.push(value);
    keys.push(key !== null && value !== '' && SECRET_KEY.test(key) ? key : null);
  } else if (Array.isArray(value)) for (const v of value) collect(v, null, out, keys);
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) collect(v, k, out, keys);
}

function rebuild<T>(value: T, strings: string[], at: { i: number }): T {
  if (typeof value === 'string') return strings[at.i++] as T;
  if (Array.isArray(value)) return value.map((v) => rebuild(v, strings, at)) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rebuild(v, strings, at)])) as T;
  return value;
}

function replaceSpans(text: string, spans: SecretSpan[]): string {
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += text.slice(at, s.start) + `[REDACTED:${s.kind}]`;
    at = s.end;
  }
  return out + text.slice(at);
}
