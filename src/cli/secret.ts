import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Vault } from '../credentials/vault.js';
import { GatehouseError } from '../gatehouse-error.js';
import { SqliteStore } from '../store/sqlite/store.js';
import { report, usage, type Io } from './common.js';

export const SECRET_HELP = `Usage:
  gatehouse secret add NAME (--from-env VAR | --from-file FILE) [--data DIR] [--json]
  gatehouse secret list [--data DIR] [--json]
  gatehouse secret remove NAME [--data DIR] [--json]

The secret store holds the real credentials the gateway lends to agents as phantom tokens. A
value is read from a variable or a file (one trailing newline dropped), never from the command
line, and is sealed with AES-256-GCM under the master key: $GATEHOUSE_MASTER_KEY (32 bytes as 64
hex digits or base64; e.g. \`openssl rand -hex 32\`), or else DIR/master.key, created with mode 0600.
Give the gateway the same key. No command, page, log or audit record ever shows a value; a
policy's \`credentials:\` section names secrets by NAME.

Examples:
  GITHUB_TOKEN=ghp_… gatehouse secret add github --from-env GITHUB_TOKEN
  gatehouse secret add stripe --from-file /run/secrets/stripe_key
`;

/** `gatehouse secret add|list|remove`. */
export async function secretCommand(argv: string[], io: Io): Promise<number> {
  let json = false;
  try {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: { 'from-env': { type: 'string' }, 'from-file': { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
    json = values.json === true;
    const [sub, name, ...extra] = positionals;
    if (values.help || sub === undefined) {
      io.out(SECRET_HELP);
      return values.help ? 0 : 2;
    }
    if (extra.length > 0) throw usage(`unexpected \`${extra[0]}\`: a value is never given on the command line (use --from-env or --from-file)`);
    const out = (value: Record<string, unknown>, text: string) => io.out(json ? JSON.stringify(value) + '\n' : text);
    const dir = resolve(values.data ?? '.gatehouse');
    if (sub === 'list') {
      const store = SqliteStore.open(dir, { create: false });
      try {
        const list = store.secrets();
        out({ secrets: list }, list.length === 0 ? 'no secrets\n' : list.map((s) => `${s.name}  added ${s.created}${s.updated !== s.created ? `, replaced ${s.updated}` : ''}\n`).join(''));
        return 0;
      } finally {
        store.close();
      }
    }
    if (sub !== 'add' && sub !== 'remove') throw usage(`unknown subcommand \`${sub}\`; expected add, list or remove`);
    if (name === undefined) throw usage('name the secret');
    const time = new Date().toISOString();
    const by = `local:${userInfo().username}`;
    if (sub === 'remove') {
      const store = SqliteStore.open(dir, { create: false });
      try {
        const removed = store.transaction(() => {
          const ok = store.removeSecret(name);
          if (ok) store.audit.append({ time, type: 'secret.removed', secret: name, by });
          return ok;
        });
        if (!removed) throw new GatehouseError('not_found', `no secret \`${name}\``);
        out({ secret: name, removed: true }, `removed secret ${name}; sessions opened from now on are not lent it\n`);
        return 0;
      } finally {
        store.close();
      }
    }
    if ((values['from-env'] === undefined) === (values['from-file'] === undefined)) throw usage('give the value with exactly one of --from-env VAR or --from-file FILE');
    let value: string;
    if (values['from-env'] !== undefined) {
      const v = process.env[values['from-env']];
      if (v === undefined || v === '') throw usage(`the variable ${values['from-env']} is not set`);
      value = v;
    } else {
      try {
        value = readFileSync(resolve(values['from-file'] as string), 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw usage(`cannot read ${values['from-file']}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    const store = SqliteStore.open(dir);
    try {
      const vault = new Vault(store);
      const replaced = vault.has(name);
      store.transaction(() => {
        vault.seal(name, value, time);
        store.audit.append({ time, type: replaced ? 'secret.replaced' : 'secret.added', secret: name, by });
      });
      out({ secret: name, added: true, replaced }, `${replaced ? 'replaced' : 'added'} secret ${name} (${Buffer.byteLength(value)} bytes, sealed with AES-256-GCM)\n`);
      return 0;
    } finally {
      store.close();
    }
  } catch (err) {
    return report(io, err, 'secret', json);
  }
}
