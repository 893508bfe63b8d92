import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GatehouseError } from '../gatehouse-error.js';
import type { SqliteStore } from '../store/sqlite/store.js';

/**
 * The secret store: real credentials, registered by an operator and kept encrypted at rest in the
 * data directory's database. Each value is sealed with AES-256-GCM (NIST SP 800-38D) under a
 * 96-bit random nonce, with the secret's name as additional authenticated data, so a sealed value
 * cannot be moved to another name. Nothing here logs or returns a value except {@link Vault.reveal},
 * which only the credential proxy calls, to inject it at the edge.
 *
 * The key: `GATEHOUSE_MASTER_KEY` (32 bytes, as 64 hex digits or base64), or else the key file
 * `master.key` in the data directory, created with 32 random bytes and mode 0600 on first use.
 * Keep the key apart from the database (the variable) to keep a copied database useless.
 */

export const KEY_FILE = 'master.key';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Largest secret value, in bytes. */
const MAX_VALUE = 64 * 1024;

export class Vault {
  private loaded: Buffer | null = null;

  /**
   * The key is read (or the key file made) at the first seal or reveal; the errors below come from those.
   * @param env where `GATEHOUSE_MASTER_KEY` is read (default `process.env`).
   */
  constructor(private readonly store: SqliteStore, private readonly env: NodeJS.ProcessEnv = process.env) {}

  /**
   * @throws GatehouseError `master_key_invalid` (a variable that is not 32 bytes, a key file of
   *         another size or readable by others), `store_unavailable` (the key file cannot be made).
   */
  private get key(): Buffer {
    this.loaded ??= masterKey(this.store.dir, this.env);
    return this.loaded;
  }

  /**
   * Seals and stores `value` under `name` (replacing any earlier value).
   * @throws GatehouseError `input_invalid` for a bad name or an empty or oversized value.
   */
  seal(name: string, value: string, time: string): void {
    if (!NAME.test(name)) throw new GatehouseError('input_invalid', 'a secret name is letters, digits, `.`, `_` and `-`, at most 64, starting with a letter or digit');
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length === 0) throw new GatehouseError('input_invalid', `the value for ${name} is empty`);
    if (bytes.length > MAX_VALUE) throw new GatehouseError('input_invalid', `the value for ${name} is ${bytes.length} bytes; the limit is ${MAX_VALUE}`);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(name, 'utf8'));
    const sealed = Buffer.concat([cipher.update(bytes), cipher.final()]);
    this.store.putSecret(name, `v1.${nonce.toString('base64url')}.${sealed.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`, time);
  }

  /**
   * The value of a secret, for injection at the edge only.
   * @throws GatehouseError `secret_unreadable` when the key does not open it (another master key, or tampering).
   */
  reveal(name: string): string | undefined {
    const envelope = this.store.sealedSecret(name);
    if (envelope === undefined) return undefined;
    const [version, nonce, sealed, tag] = envelope.split('.');
    const key = this.key;
    try {
      if (version !== 'v1' || nonce === undefined || sealed === undefined || tag === undefined) throw new Error('not a v1 envelope');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url'));
      decipher.setAAD(Buffer.from(name, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new GatehouseError('secret_unreadable', `the master key does not open the secret ${name} (another GATEHOUSE_MASTER_KEY, or the stored value was altered)`, { name });
    }
  }

  has(name: string): boolean {
    return this.store.sealedSecret(name) !== undefined;
  }
}

/** The 32-byte master key from the environment or the data directory's key file. */
function masterKey(dir: string, env: NodeJS.ProcessEnv): Buffer {
  const given = env.GATEHOUSE_MASTER_KEY;
  if (given !== undefined && given !== '') {
    const key = /^[0-9a-fA-F]{64}$/.test(given) ? Buffer.from(given, 'hex') : Buffer.from(given, 'base64');
    if (key.length !== 32) throw new GatehouseError('master_key_invalid', 'GATEHOUSE_MASTER_KEY must be 32 bytes: 64 hex digits or base64 (e.g. `openssl rand -hex 32`)');
    return key;
  }
  const file = join(dir, KEY_FILE);
  if (!existsSync(file)) {
    try {
      // INVARIANT: the key file is created with mode 0600 in one step (no window where others can read it)
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, randomBytes(32).toString('hex') + '\n');
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new GatehouseError('store_unavailable', `cannot create the key file ${file}: ${(err as Error).message}`);
    }
  }
  if ((statSync(file).mode & 0o077) !== 0) throw new GatehouseError('master_key_invalid', `the key file ${file} is readable by others: chmod 600 it`);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  if (key.length !== 32) throw new GatehouseError('master_key_invalid', `the key file ${file} does not hold 32 bytes as 64 hex digits`);
  return key;
}
