import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findSecrets, redactText, redactValue } from './redact.js';

describe('redaction', () => {
  it('masks provider tokens, keys, JWTs and connection strings', async () => {
    const secrets = {
      github: 'ghp_1234567890abcdefghijABCDEFGHIJklmnop',
      stripe: 'sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz',
      slack: 'xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
      awsId: 'AKIAIOSFODNN7EXAMPLE',
      jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    };
    for (const [name, secret] of Object.entries(secrets)) {
      const out = await redactText(`curl -H "Authorization: Bearer ${secret}" https://api.example.com`);
      assert.ok(!out.includes(secret), `${name} leaked: ${out}`);
      assert.match(out, /\[REDACTED:[^\]]+\]/, name);
    }
    const conn = await redactText('psql postgres://app:s3cretpw@db.internal:5432/prod -c "select 1"');
    assert.ok(!conn.includes('s3cretpw'), conn);
    const aws = await redactText('export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY');
    assert.ok(!aws.includes('wJalrXUtnFEMI'), aws);
    const pw = await redactText('mysql -u root --password=hunter2hunter2 -e "select 1"');
    assert.ok(!pw.includes('hunter2hunter2'), pw);
  });

  it('leaves ordinary text alone', async () => {
    for (const text of ['git status && npm test', 'SELECT id FROM users WHERE id = 42', 'rm -rf dist', '']) assert.equal(await redactText(text), text);
    assert.deepEqual(await findSecrets('nothing to see'), []);
  });

  it('redacts every string of a JSON value, keeping its shape', async () => {
    const out = await redactValue({ kind: 'mcp_tool', arguments: { token: 'ghp_1234567890abcdefghijABCDEFGHIJklmnop', n: 3, list: ['sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz', null] } });
    assert.equal(out.arguments.n, 3);
    assert.equal(out.arguments.list[1], null);
    assert.doesNotMatch(JSON.stringify(out), /ghp_|sk_live_/);
  });

  it('masks what is left of a secret where a derived text quotes it clipped', async () => {
    const secret = 'sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz';
    const out = await redactValue({ command: `curl -H "Authorization: Bearer ${secret}" https://x`, reason: `runs \`curl -H "Authorization: Bearer ${secret.slice(0, 14)}…\`` });
    assert.doesNotMatch(JSON.stringify(out), /sk_live_51H/);
    assert.match(out.reason, /Bearer \[REDACTED:[^\]]+\]…/);
  });

  it('redacts values asked for at once through one pass, each with its own secrets', async () => {
    const secrets = ['ghp_1234567890abcdefghijABCDEFGHIJklmnop', 'sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz', 'xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'];
    const values = Array.from({ length: 30 }, (_, i) => ({ n: i, text: i % 4 === 3 ? `plain ${i}` : `token ${i}: ${secrets[i % 4]} end`, list: [`p${i}`] }));
    const out = await Promise.all(values.map((v) => redactValue(v)));
    out.forEach((o, i) => {
      assert.equal(o.n, i);
      assert.deepEqual(o.list, [`p${i}`]);
      if (i % 4 === 3) assert.equal(o.text, `plain ${i}`);
      else assert.match(o.text, new RegExp(`^token ${i}: \\[REDACTED:[^\\]]+\\] end$`));
    });
  });

  it('masks values under secret-named keys, opaque bearer tokens and -p passwords, and names the rule', async () => {
    const out = await redactValue({
      env: { PGPASSWORD: 'Sup3rS3cretPassw0rd!', PATH: '/usr/bin' },
      headers: { Authorization: 'Bearer 8f3k2j4h5g6f7d8s9a0qwertyuiopzxcv', Accept: 'application/json' },
      arguments: { password: 'hunter2hunter2', repo: 'acme/api' },
      command: 'mysql -u root -pHunter2Hunter2 -e "select 1"; curl -H "Authorization: Bearer 8f3k2j4h5g6f7d8s9a0qwertyuiopzxcv" https://x',
      derived: 'psql with Sup3rS3cretPassw0rd! as the password',
      stripe: 'sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUvWxYz',
    });
    const text = JSON.stringify(out);
    for (const secret of ['Sup3rS3cret', '8f3k2j4h5g6f', 'hunter2hunter2', 'Hunter2Hunter2']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    assert.equal(out.env.PATH, '/usr/bin');
    assert.equal(out.headers.Accept, 'application/json');
    assert.equal(out.arguments.repo, 'acme/api');
    assert.equal(out.stripe, '[REDACTED:stripe-key]');
  });

  it('never hides what runs behind a mask', async () => {
    const out = await redactText('export API_TOKEN=$(rm${IFS}-rf${IFS}/srv/data)');
    assert.match(out, /\$\(rm/);
  });

  it('leaves no performance marks behind (secretlint\'s profiler would keep them all)', async () => {
    const { performance } = await import('node:perf_hooks');
    performance.clearMarks();
    for (let i = 0; i < 20; i++) await redactText(`token ghp_1234567890abcdefghijABCDEFGHIJklmnop ${i}`);
    assert.equal(performance.getEntriesByType('mark').length, 0);
  });
});
