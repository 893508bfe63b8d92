import { relative } from 'node:path';
import type { Part } from '../actions/action.js';
import { assertNever } from '../actions/action.js';
import { describePart, type Decision, type RuleRef } from '../engine/decide.js';

/** `id (file:line)`, with the file relative to the current directory when that is shorter. */
export function ruleLabel(rule: RuleRef): string {
  if (rule.file === null) return rule.id;
  const rel = relative(process.cwd(), rule.file);
  const file = rel.length < rule.file.length && !rel.startsWith('../..') ? rel : rule.file;
  return rule.line === null ? `${rule.id} (${file})` : `${rule.id} (${file}:${rule.line})`;
}

/** The facts of a part a person or a script needs, without the bulk. */
export function partFacts(part: Part): Record<string, unknown> {
  switch (part.kind) {
    case 'shell':
      return { program: part.program, subcommand: part.subcommand, flags: part.flags, args: part.args, paths: part.paths, assigns: part.assigns, expands: part.expands, script: part.script, cwd: part.cwd, text: part.text };
    case 'sql':
      return { statement: part.statement, tables: part.tables, where: part.where, readOnly: part.readOnly, functions: part.functions, settings: part.settings, text: part.text };
    case 'http':
      return { method: part.method, url: part.url, host: part.host, path: part.path };
    case 'mcp_tool':
      return { server: part.server, tool: part.tool, interpreted: part.interpreted, annotations: part.annotations };
    case 'file_read':
    case 'file_write':
      return { path: part.path };
    default:
      return assertNever(part, 'part kind');
  }
}

/** The decision as one JSON-ready object (`gatehouse check --json`). */
export function decisionJson(d: Decision): Record<string, unknown> {
  return {
    verdict: d.verdict,
    rule: d.rule,
    reasons: d.reasons,
    parts: d.parts.map((p) => ({
      kind: p.part.kind,
      verdict: p.verdict,
      rule: p.rule.id,
      origin: p.part.origin,
      tags: p.part.tags,
      ...partFacts(p.part),
    })),
  };
}

/** The decision for a terminal: verdict and rule, reasons, then each part on a line. */
export function decisionText(d: Decision): string {
  const lines = [`${d.verdict.toUpperCase()} — rule ${ruleLabel(d.rule)}`];
  for (const r of d.reasons) lines.push(`  ${r}`);
  if (d.parts.length > 0) {
    lines.push('parts:');
    for (const p of d.parts) {
      const tags = p.part.tags.length ? ` [${p.part.tags.join(', ')}]` : '';
      lines.push(`  ${p.verdict.padEnd(5)}  ${p.part.kind.padEnd(10)} ${describePart(p.part)}${tags} — ${p.rule.id} — ${p.part.origin}`);
    }
  }
  return lines.join('\n') + '\n';
}
