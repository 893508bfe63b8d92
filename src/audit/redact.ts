import { lintSource } from '@secretlint/core';
import { creator as pattern } from '@secretlint/secretlint-rule-pattern';
import { creator as recommend } from '@secretlint/secretlint-rule-preset-recommend';

/**
 * Redaction: secrets in action text are masked before anything is stored or shown (DESIGN rule 5).
 * secretlint's recommended preset finds most provider tokens and connection strings; pattern rules
 * add what it misses (Stripe keys, JWTs, AWS keys including the documented example keys, which the
 * preset deliberately ignores, and `password=` style assignments).
 */

const PATTERNS = [
  { name: 'stripe-key', pattern: '/\\b[rsp]k_(live|test)_[0-9a-zA-Z]{16,}\\b/' },
  { name: 'jwt', pattern: '/\\beyJ[0-9A-Za-z_-]{8,}\\.[0-9A-Za-z_-]{8,}\\.[0-9A-Za-z_-]{8,}\\b/' },
  { name: 'aws-access-key-id', pattern: '/\\b(AKIA|ASIA)[0-9A-Z]{16}\\b/' },
  { name: 'aws-secret-access-key', pattern: '/(?<=aws_secret_access_key[\\s"\':=]{1,5})[A-Za-z0-9/+=]{40}/i' },
  { name: 'password-assignment', pattern: '/(?<=\\b[A-Za-z_]*(password|passwd|secret|token|api_?key)[A-Za-z_]*\\s*[=:]\\s*["\']?)[^\\s"\'&;]{6,}/i' },
];

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
    .map((m) => ({ start: m.range[0], end: m.range[1], kind: m.ruleId === '@secretlint/secretlint-rule-pattern' ? String((m.data as { name?: string } | undefined)?.name ?? m.messageId) : m.messageId }))
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
  const spans = await findSecrets(text);
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += text.slice(at, s.start) + `[REDACTED:${s.kind}]`;
    at = s.end;
  }
  return out + text.slice(at);
}

/** A copy of a JSON value with every string redacted; keys are kept. */
export async function redactValue<T>(value: T): Promise<T> {
  if (typeof value === 'string') return (await redactText(value)) as T;
  if (Array.isArray(value)) return (await Promise.all(value.map((v) => redactValue(v)))) as T;
  if (value !== null && typeof value === 'object') {
    const entries = await Promise.all(Object.entries(value as Record<string, unknown>).map(async ([k, v]) => [k, await redactValue(v)] as const));
    return Object.fromEntries(entries) as T;
  }
  return value;
}
