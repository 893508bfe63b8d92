import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { verifyChain } from '../audit/chain.js';
import { PUBLIC_KEY_FILE, SqliteAuditLog } from '../store/sqlite/audit.js';
import { DB_FILE } from '../store/sqlite/db.js';
import { EXIT, report, usage, type Io } from './common.js';

export const AUDIT_HELP = `Usage:
  gatehouse audit verify [--data DIR] [--json]
  gatehouse audit export --jsonl [--data DIR]

verify  checks the audit trail of a data directory (default ./.gatehouse): every record's hash,
        the chain of hashes from the first record, and every signed checkpoint against the
        directory's public key. It names each record that was modified, deleted, inserted or
        reordered, and a truncation past a checkpoint. Exit 0 intact, 1 problems found, 2 error.
export  writes every record as one JSON line, in stored order, for a SIEM.
`;

/** `gatehouse audit verify|export`. */
export async function audit(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined || sub === '--help' || sub === '-h') {
      io.out(AUDIT_HELP);
      return sub === undefined ? EXIT.usage : 0;
    }
    const { values } = parseArgs({ args: rest, options: { data: { type: 'string' }, json: { type: 'boolean' }, jsonl: { type: 'boolean' } } });
    const dir = resolve(values.data ?? '.gatehouse');
    if (!existsSync(join(dir, DB_FILE))) throw usage(`no audit trail in ${dir} (choose the data directory with --data DIR)`);
    const log = SqliteAuditLog.open(dir);
    try {
      if (sub === 'export') {
        if (!values.jsonl) throw usage('export writes JSON Lines: gatehouse audit export --jsonl');
        for (const r of log.records()) io.out(JSON.stringify(r) + '\n');
        return 0;
      }
      if (sub !== 'verify') throw usage(`unknown subcommand \`${sub}\`; expected verify or export`);
      const keyFile = join(dir, PUBLIC_KEY_FILE);
      if (!existsSync(keyFile)) throw usage(`the public key ${keyFile} is missing: checkpoints cannot be checked`);
      const v = verifyChain([...log.records()], log.checkpoints(), readFileSync(keyFile, 'utf8'));
      if (values.json) io.out(JSON.stringify(v) + '\n');
      else if (v.ok) io.out(`audit trail intact: ${v.records} records, last signed checkpoint at ${v.lastGoodCheckpoint ?? 'none yet'}\n`);
      else {
        io.out(`audit trail TAMPERED: ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'} in ${v.records} records\n`);
        for (const p of v.problems) io.out(`  ${p.kind} at ${p.seq}: ${p.message}\n`);
        io.out(`the trail is trustworthy up to the checkpoint at ${v.lastGoodCheckpoint ?? '(none)'}\n`);
      }
      return v.ok ? 0 : EXIT.failed;
    } finally {
      log.close();
    }
  } catch (err) {
    return report(io, err, 'audit');
  }
}
