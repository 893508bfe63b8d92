import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PUBLIC_KEY_FILE, SqliteAuditLog } from '../store/sqlite/audit.js';
import { DB_FILE } from '../store/sqlite/db.js';
import { EXIT, report, usage, type Io } from './common.js';

export const AUDIT_HELP = `Usage:
  gatehouse audit verify [--data DIR] [--public-key FILE] [--json]
  gatehouse audit export --jsonl [--data DIR]

verify  checks the audit trail of a data directory (default ./.gatehouse): every record's hash,
        the chain of hashes from the first record, and every signed checkpoint against the
        directory's public key. It names each record that was modified, deleted, inserted or
        reordered, and a truncation past a checkpoint. Exit 0 intact, 1 problems found, 2 error.
        --public-key FILE checks against a copy of the public key kept outside the data directory
        (whoever can write the directory could replace the key beside it). Records after the last
        checkpoint are reported as not yet signed: anyone able to write the store could change or
        remove them undetected, so keep exported checkpoints (or the whole export) elsewhere.
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
    const { values } = parseArgs({ args: rest, options: { data: { type: 'string' }, 'public-key': { type: 'string' }, json: { type: 'boolean' }, jsonl: { type: 'boolean' } } });
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
      const keyFile = values['public-key'] === undefined ? join(dir, PUBLIC_KEY_FILE) : resolve(values['public-key']);
      if (!existsSync(keyFile)) throw usage(`the public key ${keyFile} is missing: checkpoints cannot be checked`);
      const v = log.verify(readFileSync(keyFile, 'utf8'));
      if (values.json) io.out(JSON.stringify(v) + '\n');
      else if (v.ok) {
        io.out(`audit trail intact: ${v.records} records, last signed checkpoint at ${v.lastGoodCheckpoint ?? 'none yet'}\n`);
        const unsigned = v.records - (v.lastGoodCheckpoint ?? 0);
        if (unsigned > 0) io.out(`  ${unsigned} record${unsigned === 1 ? '' : 's'}${v.lastGoodCheckpoint === null ? '' : ' after it'} ${unsigned === 1 ? 'is' : 'are'} not signed yet (the gateway signs at least once a minute and when it stops)\n`);
      }
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
