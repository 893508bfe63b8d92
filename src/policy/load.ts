import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import { GatehouseError } from '../gatehouse-error.js';
import { compilePolicy, type CompiledPolicy } from './compile.js';
import { policySchema } from './schema.js';

/** One problem in a policy file, located for an editor: 1-based line and column. */
export interface PolicyIssue {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** Where the built-in default policy lives in a checkout (shipped as YAML, not compiled). */
export const DEFAULT_POLICY_PATH = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url));

/**
 * Parses, validates and compiles a policy text.
 *
 * @param text the YAML text.
 * @param file a name for messages (a path, or `<default>`).
 * @throws GatehouseError code `policy_invalid`, `data.issues: PolicyIssue[]`, every problem found
 *         (YAML syntax, schema, unknown keys, matchers that do not fit the rule's kinds, CEL errors,
 *         duplicate ids), each with its line and column.
 * @example loadPolicyText('version: 1\nrules: []\n', 'p.yaml').rules.length // 0
 */
export function loadPolicyText(text: string, file: string): CompiledPolicy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const issues: PolicyIssue[] = [];
  const at = (offset: number, message: string) => {
    const pos = lines.linePos(offset);
    issues.push({ file, line: pos.line, column: pos.col, message });
  };
  for (const e of doc.errors) at(e.pos[0], e.message.split('\n')[0] ?? e.message);
  visit(doc, {
    Alias(_, node) {
      if (node.resolve(doc) === undefined) at(node.range?.[0] ?? 0, `the alias *${node.source} comes before its anchor &${node.source}, or has none`);
    },
  });
  if (issues.length > 0) throw invalid(file, issues);

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    at(0, `the YAML cannot be read: ${(err as Error).message}`);
    throw invalid(file, issues);
  }
  const parsed = policySchema.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
      const keys = (issue as { keys?: string[] }).keys;
      if (issue.code === 'unrecognized_keys' && keys) {
        for (const key of keys) at(keyOffset(doc, path, key), `unknown key \`${key}\`${hint(key)} at ${render(path)}`);
        continue;
      }
      at(nodeOffset(doc, path), `${render(path)}: ${describeIssue(issue)}`);
    }
    throw invalid(file, issues);
  }
  const ruleLines = parsed.data.rules.map((_, i) => lines.linePos(nodeOffset(doc, ['rules', i])).line);
  const compiled = compilePolicy(parsed.data, file, ruleLines);
  if (!compiled.ok) {
    for (const e of compiled.issues) at(nodeOffset(doc, e.path), `${render(e.path)}: ${e.message}`);
    throw invalid(file, issues);
  }
  // a policy without an `errors:` section classifies outcomes with the built-in default's classes
  if (parsed.data.errors === undefined && file !== DEFAULT_POLICY_PATH) compiled.policy.errors = defaultPolicy().errors;
  return compiled.policy;
}

/**
 * Reads and loads a policy file.
 * @throws GatehouseError `policy_unreadable` (`data.file`) or `policy_invalid` (see {@link loadPolicyText}).
 */
export function loadPolicyFile(path: string): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new GatehouseError('policy_unreadable', `cannot read the policy ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: path });
  }
  return loadPolicyText(text, path);
}

let builtIn: CompiledPolicy | null = null;

/** The built-in default policy for a coding agent in a workspace (`policies/default.yaml`). */
export function defaultPolicy(): CompiledPolicy {
  builtIn ??= loadPolicyFile(DEFAULT_POLICY_PATH);
  return builtIn;
}

/** Renders issues one per line as `file:line:column: message`, the form editors and CI parse. */
export function formatIssues(issues: PolicyIssue[]): string {
  return issues.map((i) => `${i.file}:${i.line}:${i.column}: ${i.message}`).join('\n');
}

function invalid(file: string, issues: PolicyIssue[]): GatehouseError {
  issues.sort((a, b) => a.line - b.line || a.column - b.column);
  return new GatehouseError('policy_invalid', `the policy ${file} is invalid:\n${formatIssues(issues)}`, { file, issues });
}

/** Offset of the deepest node that exists along `path` (a missing key points at its parent). */
function nodeOffset(doc: Document, path: (string | number)[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
    if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range) return node.range[0];
  }
  return 0;
}

function keyOffset(doc: Document, path: (string | number)[], key: string): number {
  const map = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (isMap(map)) {
    for (const pair of map.items) {
      if (isScalar(pair.key) && pair.key.value === key && pair.key.range) return pair.key.range[0];
    }
  }
  return nodeOffset(doc, path);
}

function render(path: (string | number)[]): string {
  if (path.length === 0) return 'the top level';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function describeIssue(issue: { code: string; message: string; expected?: unknown; values?: unknown[] }): string {
  if (issue.code === 'invalid_value' && issue.values) return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return `required (${issue.message.replace(/^Invalid input: /, '')})`;
  return issue.message.replace(/^Invalid input: /, '');
}

const KNOWN_KEYS = ['id', 'verdict', 'kind', 'reason', 'unless', 'when', 'program', 'subcommand', 'flags', 'options', 'args', 'paths', 'assigns', 'expands', 'script', 'statement', 'tables', 'where', 'readOnly', 'functions', 'settings', 'method', 'host', 'port', 'urlPath', 'scheme', 'server', 'tool', 'interpreted', 'annotations', 'path', 'tags', 'version', 'description', 'default', 'rules', 'any', 'all', 'none'];

function hint(key: string): string {
  let best: string | null = null;
  let bestDistance = 3;
  for (const k of KNOWN_KEYS) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) { best = k; bestDistance = d; }
  }
  return best ? ` (did you mean \`${best}\`?)` : '';
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] as number;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] as number;
      dp[j] = Math.min((dp[j] as number) + 1, (dp[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length] as number;
}
