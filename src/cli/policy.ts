import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { readAction } from '../actions/input.js';
import { decide } from '../engine/decide.js';
import { policyJsonSchema } from '../policy/schema.js';
import { contextFrom, EXIT, preparePolicy, report, usage, type Io } from './common.js';
import { ruleLabel } from './format.js';

export const POLICY_HELP = `Usage:
  gatehouse policy test CASES [--policy FILE] [--cwd DIR] [--home DIR] [--json] [--verbose]
  gatehouse policy validate FILE
  gatehouse policy schema

test      runs a file of cases against a policy and reports each failure, as \`opa test\` does.
          CASES is YAML ({policy?, context?: {cwd, home}, cases: [...]}) or JSON Lines (the
          corpus format). Each case is an action ({kind: shell, command: …, cwd: …}, …) plus
          expect: allow | ask | deny | gate (gate: anything but allow), and optionally rule: ID.
          The policy is --policy, else the file's own \`policy:\` (relative to it), else the
          built-in default. Exit 0 when every case passes, 1 when any fails, 2 on a bad file.
validate  checks a policy file and prints every problem as file:line:column: message (exit 2).
schema    prints the JSON Schema of the policy format, for editors.
`;

/** `gatehouse policy test|validate|schema`. */
export async function policyCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      io.out(POLICY_HELP);
      return sub === undefined ? EXIT.usage : 0;
    }
    if (sub === 'schema') {
      io.out(JSON.stringify(policyJsonSchema(), null, 2) + '\n');
      return 0;
    }
    if (sub === 'validate') {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      if (positionals.length !== 1) throw usage('give one policy file: gatehouse policy validate FILE');
      const policy = await preparePolicy(positionals[0]);
      io.out(`${positionals[0]}: valid, ${policy.rules.length} rules, default ${policy.default}\n`);
      return 0;
    }
    if (sub === 'test') return await policyTest(rest, io);
    throw usage(`unknown subcommand \`${sub}\`; expected test, validate or schema`);
  } catch (err) {
    return report(io, err, 'policy');
  }
}

interface CaseFile {
  policy?: string;
  context?: { cwd?: string; home?: string };
  cases: Record<string, unknown>[];
}

async function policyTest(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { policy: { type: 'string' }, cwd: { type: 'string' }, home: { type: 'string' }, json: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } },
  });
  if (positionals.length !== 1) throw usage('give one file of cases: gatehouse policy test CASES');
  const file = resolve(positionals[0] as string);
  const spec = readCases(file);
  const policyFile = values.policy ?? (spec.policy !== undefined ? resolve(dirname(file), spec.policy) : undefined);
  const policy = await preparePolicy(policyFile);
  const ctx = contextFrom(values.cwd ?? spec.context?.cwd, values.home ?? spec.context?.home);
  const results: { name: string; pass: boolean; detail: string }[] = [];
  spec.cases.forEach((c, i) => {
    const name = String(c.id ?? c.name ?? `case ${i + 1}`);
    const expect = c.expect;
    if (expect !== 'allow' && expect !== 'ask' && expect !== 'deny' && expect !== 'gate') {
      results.push({ name, pass: false, detail: `expect must be allow, ask, deny or gate, not ${JSON.stringify(expect)}` });
      return;
    }
    const read = readAction(c);
    if (!read.ok) {
      results.push({ name, pass: false, detail: read.reason });
      return;
    }
    const d = decide(policy, read.action, ctx);
    const verdictOk = expect === 'gate' ? d.verdict !== 'allow' : d.verdict === expect;
    const ruleOk = c.rule === undefined || c.rule === d.rule.id;
    const detail = `expected ${expect}${c.rule !== undefined ? ` by ${String(c.rule)}` : ''}, got ${d.verdict} by ${ruleLabel(d.rule)}: ${d.reasons[0] ?? ''}`;
    results.push({ name, pass: verdictOk && ruleOk, detail });
  });
  const failed = results.filter((r) => !r.pass);
  if (values.json) {
    io.out(JSON.stringify({ passed: results.length - failed.length, failed: failed.length, failures: failed }) + '\n');
  } else {
    for (const r of values.verbose ? results : failed) io.out(`${r.pass ? 'PASS' : 'FAIL'}  ${r.name}: ${r.detail}\n`);
    io.out(`${positionals[0]}: ${results.length - failed.length} of ${results.length} cases pass${failed.length ? `, ${failed.length} fail` : ''}\n`);
  }
  return failed.length > 0 ? EXIT.failed : 0;
}

function readCases(file: string): CaseFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usage(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (file.endsWith('.jsonl')) {
    const cases = text.split('\n').map((line, i) => ({ line, i })).filter(({ line }) => line.trim() !== '').map(({ line, i }) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch (err) {
        throw usage(`${file}:${i + 1}: not valid JSON: ${(err as Error).message}`);
      }
    });
    return { cases };
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw usage(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || !Array.isArray((doc as CaseFile).cases)) throw usage(`${file}: expected a mapping with a \`cases\` list`);
  return doc as CaseFile;
}
