import { copyFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_POLICY_PATH } from '../policy/load.js';
import { report, usage, type Io } from './common.js';

export const INIT_HELP = `Usage:
  gatehouse init [FILE] [--force] [--json]

Writes the built-in default policy to FILE (default: gatehouse.yaml) to edit. Refuses to overwrite
an existing file unless --force. Use it with \`--policy FILE\`; Gatehouse never picks a policy up
from the current directory on its own. --json prints {"written": PATH}.
`;

/** `gatehouse init`: writes the default policy out. */
export async function init(argv: string[], io: Io): Promise<number> {
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { force: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      io.out(INIT_HELP);
      return 0;
    }
    if (positionals.length > 1) throw usage('give at most one file');
    const target = resolve(positionals[0] ?? 'gatehouse.yaml');
    if (existsSync(target) && !values.force) throw usage(`${target} exists; pass --force to overwrite it`);
    copyFileSync(DEFAULT_POLICY_PATH, target);
    io.out(values.json ? JSON.stringify({ written: target }) + '\n' : `wrote the default policy to ${target}\ncheck it with: gatehouse policy validate ${target}\n`);
    return 0;
  } catch (err) {
    return report(io, err, 'init', argv.includes('--json'));
  }
}
