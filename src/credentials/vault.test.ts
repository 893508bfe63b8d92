import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../store/sqlite/store.js';
import { KEY_FILE, Vault } from './vault.js';

const dir = () => join(mkdtempSync(join(tmpdir(), 'gatehouse-vault-')), 'data');
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'no error';
};

describe('the secret store', () => {
  it('seals with a key file it makes at 0600, and opens what it sealed', () => {
    const store = SqliteStore.open(dir());
    try {
      const vault = new Vault(store, {});
      const value = `ghp_${randomBytes(18).toString('hex')}`;
      vault.seal('github', value, new Date().toISOString());
      assert.equal(statSync(join(store.dir, KEY_FILE)).mode & 0o777, 0o600);
      assert.equal(new Vault(store, {}).reveal('github'), value);
      assert.equal(vault.reveal('absent'), undefined);
      assert.ok(!(store.sealedSecret('github') as string).includes(value));
    } finally {
      store.close();
    }
  });

  it('refuses a wrong key, a moved or altered envelope, a bad key and a key file others can read', () => {
    const store = SqliteStore.open(dir());
    try {
      const key = randomBytes(32).toString('hex');
      const vault = new Vault(store, { GATEHOUSE_MASTER_KEY: key });
      vault.seal('stripe', 'sk_live_example_value_0000', new Date().toISOString());
      assert.equal(code(() => new Vault(store, { GATEHOUSE_MASTER_KEY: randomBytes(32).toString('hex') }).reveal('stripe')), 'secret_unreadable');
      // the name is authenticated: the same envelope under another name does not open
      store.putSecret('copied', store.sealedSecret('stripe') as string, new Date().toISOString());
      assert.equal(code(() => vault.reveal('copied')), 'secret_unreadable');
      const sealed = store.sealedSecret('stripe') as string;
      const flipped = sealed.slice(0, -3) + (sealed.at(-3) === 'A' ? 'B' : 'A') + sealed.slice(-2);
      store.putSecret('stripe', flipped, new Date().toISOString());
      assert.equal(code(() => vault.reveal('stripe')), 'secret_unreadable');
      assert.equal(code(() => new Vault(store, { GATEHOUSE_MASTER_KEY: 'short' }).reveal('stripe')), 'master_key_invalid');
      assert.equal(code(() => vault.seal('bad name', 'x', '')), 'input_invalid');
      assert.equal(code(() => vault.seal('empty', '', '')), 'input_invalid');
    } finally {
      store.close();
    }
    const other = SqliteStore.open(dir());
    try {
      new Vault(other, {}).seal('x', 'value', new Date().toISOString());
      chmodSync(join(other.dir, KEY_FILE), 0o644);
      assert.equal(code(() => new Vault(other, {}).reveal('x')), 'master_key_invalid');
    } finally {
      other.close();
    }
  });
});
