import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gatehouse } from '../testing/process.js';

/**
 * `gatehouse scan` through the real binary, on a temp tree with planted keys. Every secret is made
 * at run time, so this file holds nothing secret-shaped for a scanner to find.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const alnum = (n: number, alphabet = ALNUM) => [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');
const upper = (n: number) => alnum(n, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567');

const S = {
  github: 'gh' + 'p_' + alnum(36),
  awsId: 'AK' + 'IA' + upper(16),
  awsSecret: randomBytes(30).toString('base64'),
  stripe: 'sk' + '_live_' + alnum(24),
  pgPassword: alnum(14),
  slack: 'xo' + 'xb-' + alnum(12, '0123456789') + '-' + alnum(24),
  google: 'AI' + 'za' + alnum(35),
  restricted: 'rk' + '_live_' + alnum(24),
  keyBody: 'MI' + 'IEow' + randomBytes(900).toString('base64'),
  outside: 'gh' + 'p_' + alnum(36),
  dotGit: alnum(16),
  binary: 'gh' + 'p_' + alnum(36),
  weird: 'sk' + '_live_' + alnum(24),
  big: 'gh' + 'p_' + alnum(36),
  env: 'gh' + 'p_' + alnum(36),
  envByName: alnum(20),
};
const pem = (label: string) => (body: string) => `-----BEGIN ${label}-----\n${body.match(/.{1,64}/g)?.join('\n')}\n-----END ${label}-----\n`;
const WEIRD_NAME = 'notes\u001b[2J.env';

const tmp = mkdtempSync(join(tmpdir(), 'gatehouse-scan-'));
const tree = join(tmp, 'tree');
const outside = join(tmp, 'outside');

function put(path: string, content: string | Buffer): string {
  const full = join(tree, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, content);
  return full;
}

put('config/app.yml', `name: demo\ngithub:\n  token: ${S.github}\n`);
put('.aws/credentials', `[default]\naws_access_key_id = ${S.awsId}\naws_secret_access_key = ${S.awsSecret}\n`);
put('.env', `STRIPE_SECRET_KEY=${S.stripe}\n`);
put('services/db/nested/settings.ini', `[db]\nurl = postgres://app:${S.pgPassword}@db.internal/shop\n`);
put('keys/id_rsa', pem(['RSA', 'PRIVATE', 'KEY'].join(' '))(S.keyBody));
put('.gitignore', 'secrets/\n*.local\n');
put('secrets/token.txt', `${S.slack}\n`);
put('sub/.gitignore', 'private.txt\n!keep.local\n');
put('sub/private.txt', `maps key: ${S.google}\n`);
put('sub/keep.local', `payments ${S.restricted}\n`);
put('bin/blob.dat', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1]), Buffer.from(` ${S.binary} `)]));
put('.git/config', `[remote "origin"]\n  url = https://dev:${S.dotGit}@git.example.com/app.git\n`);
put(WEIRD_NAME, `KEY=${S.weird}\n`);
mkdirSync(outside);
writeFileSync(join(outside, 'creds.yml'), `token: ${S.outside}\n`);
symlinkSync(join(outside, 'creds.yml'), join(tree, 'link.yml'));
symlinkSync(outside, join(tree, 'linkdir'));
const big = join(tmp, 'big.log');
writeFileSync(big, 'x'.repeat(5000) + `\n${S.big}\n`);

after(() => rmSync(tmp, { recursive: true, force: true }));

interface Finding {
  location: string;
  line: number;
  column: number;
  kind: string;
  preview: string;
}
interface Scan {
  findings: Finding[];
  filesScanned: number;
  skipped: { location: string; reason: string; detail?: string }[];
}

/** The expected findings in the tree, by `file:line` relative to the tree, with the kind's pattern. */
const PLANTED: Record<string, RegExp> = {
  'config/app.yml:3': /github/i,
  '.aws/credentials:2': /aws.*(key.?id|access)/i,
  '.aws/credentials:3': /aws.*secret/i,
  '.env:1': /stripe/i,
  'services/db/nested/settings.ini:2': /postgres|connection/i,
  'keys/id_rsa:1': /private.?key/i,
  'secrets/token.txt:1': /slack/i,
  'sub/private.txt:1': /google/i,
  'sub/keep.local:1': /stripe/i,
  [`${WEIRD_NAME}:1`]: /stripe/i,
};

function byPlace(scan: Scan): Map<string, Finding> {
  const found = new Map<string, Finding>();
  for (const f of scan.findings) {
    const key = `${relative(tree, f.location)}:${f.line}`;
    assert.ok(!found.has(key), `${key} is reported twice`);
    found.set(key, f);
  }
  return found;
}

function assertNoSecret(text: string): void {
  for (const [name, secret] of Object.entries(S)) {
    assert.ok(!text.includes(secret), `the output holds the planted ${name} secret`);
    assert.ok(!text.includes(secret.slice(0, 10)), `the output holds the first 10 characters of the planted ${name} secret`);
  }
}

describe('gatehouse scan: files', () => {
  it('finds every planted key with kind, file:line:col and a masked preview; skips binary files, .git and symbolic links', () => {
    const r = gatehouse(['scan', tree, '--json']);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, '');
    assertNoSecret(r.stdout);
    const scan = JSON.parse(r.stdout) as Scan;
    const found = byPlace(scan);
    assert.deepEqual([...found.keys()].sort(), Object.keys(PLANTED).sort());
    for (const [place, kind] of Object.entries(PLANTED)) assert.match((found.get(place) as Finding).kind, kind, place);
    assert.equal(found.get('config/app.yml:3')?.column, 10);
    assert.equal(found.get('config/app.yml:3')?.preview, `${S.github.slice(0, 4)}…(40 chars)`);
    assert.equal(found.get('.aws/credentials:2')?.column, 21);
    assert.equal(found.get('.env:1')?.column, 19);
    assert.equal(found.get('keys/id_rsa:1')?.column, 1);
    for (const f of scan.findings) assert.match(f.preview, /^[^…]{0,4}…\(\d+ chars\)$/u, `${f.location}: ${f.preview}`);
    // a password under 12 characters shows nothing but its length
    const short = JSON.parse(gatehouse(['scan', '--json', put('short.env', `PASSWORD=${S.pgPassword.slice(0, 9)}\n`)]).stdout) as Scan;
    assert.deepEqual(short.findings.map((f) => f.preview), ['…(9 chars)']);
    rmSync(join(tree, 'short.env'));
    assert.deepEqual(scan.skipped, [{ location: join(tree, 'bin/blob.dat'), reason: 'binary' }]);
    // the two .gitignore files and the 9 with keys (not blob.dat, .git/config, link.yml, linkdir/)
    assert.equal(scan.filesScanned, 11);
  });

  it('prints path:line:col  kind  preview and a summary, with control characters in names escaped', () => {
    const r = gatehouse(['scan', tree]);
    assert.equal(r.status, 1, r.stderr);
    assertNoSecret(r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.at(-1), '10 credentials found in 11 files; skipped 1 binary');
    for (const line of lines.slice(0, -1)) assert.match(line, /^\S.*:\d+:\d+ {2}\S+ {2}\S{0,4}…\(\d+ chars\)$/u);
    assert.ok(lines.includes(`${join(tree, '.env')}:1:19  stripe-key  sk_l…(32 chars)`), r.stdout);
    assert.ok(!r.stdout.includes('\u001b'), 'an escape character reached the terminal');
    assert.ok(r.stdout.includes('notes\\u{1b}[2J.env:1:5'), r.stdout);
  });

  it('honours .gitignore files (nested ones and negations) only with --gitignore', () => {
    const r = gatehouse(['scan', tree, '--json', '--gitignore']);
    assert.equal(r.status, 1, r.stderr);
    const found = byPlace(JSON.parse(r.stdout) as Scan);
    const expected = Object.keys(PLANTED).filter((p) => !p.startsWith('secrets/') && !p.startsWith('sub/private.txt'));
    assert.deepEqual([...found.keys()].sort(), expected.sort());
    assert.ok(found.has('sub/keep.local:1'), 'a nested !negation keeps a file the parent .gitignore leaves out');
  });

  it('scans a file named directly, once however often it is reached', () => {
    const r = gatehouse(['scan', '--json', join(tree, '.env'), join(tree, '.env'), join(tree, 'config'), join(tree, 'config/app.yml')]);
    assert.equal(r.status, 1, r.stderr);
    const scan = JSON.parse(r.stdout) as Scan;
    assert.deepEqual([...byPlace(scan).keys()].sort(), ['.env:1', 'config/app.yml:3']);
    assert.equal(scan.filesScanned, 2);
  });

  it('skips files over --max-file-size, and says so', () => {
    const r = gatehouse(['scan', big, '--max-file-size', '1000']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'no credentials found in 0 files; skipped 1 over 1000 bytes\n');
    const all = gatehouse(['scan', big, '--json']);
    assert.equal(all.status, 1);
    assert.deepEqual((JSON.parse(all.stdout) as Scan).findings.map((f) => [f.line, f.column]), [[2, 1]]);
  });

  it('exits 0 with nothing found', () => {
    const r = gatehouse(['scan', outside + '-none', '--json']);
    assert.equal(r.status, 2); // does not exist (yet)
    mkdirSync(outside + '-none');
    writeFileSync(join(outside + '-none', 'README.md'), 'Set the token with `export API_TOKEN=$(pass show api)`.\n');
    const clean = gatehouse(['scan', outside + '-none']);
    assert.equal(clean.status, 0, clean.stdout);
    assert.equal(clean.stdout, 'no credentials found in 1 file\n');
  });
});

describe('gatehouse scan: bad input', () => {
  it('exits 2 with a clear message for a PATH that does not exist or a bad option, before scanning anything', () => {
    const missing = join(tmp, 'no-such-dir');
    const r = gatehouse(['scan', tree, missing]);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^gatehouse scan: .*no-such-dir: no such file or directory\n/);
    const json = gatehouse(['scan', '--json', missing]);
    assert.equal(json.status, 2);
    assert.equal(JSON.parse(json.stdout).error.code, 'usage');
    for (const args of [['--max-file-size', 'ten'], ['--max-file-size', '0'], ['--nope']]) {
      const bad = gatehouse(['scan', tree, ...args]);
      assert.equal(bad.status, 2, args.join(' '));
      assert.match(bad.stderr, /gatehouse scan --help/);
    }
    assert.match(gatehouse(['scan', '--help']).stdout, /^Usage:\n {2}gatehouse scan \[PATH…\]/);
  });

  it('reports a file it cannot read as skipped, and goes on', () => {
    // /proc/self/mem is a regular file whose first page cannot be read (EIO), for root too
    const r = gatehouse(['scan', '--json', '/proc/self/mem', join(tree, '.env')]);
    assert.equal(r.status, 1, r.stderr);
    const scan = JSON.parse(r.stdout) as Scan;
    assert.deepEqual(scan.skipped, [{ location: '/proc/self/mem', reason: 'unreadable', detail: 'EIO' }]);
    assert.equal(scan.findings.length, 1);
    const text = gatehouse(['scan', '/proc/self/mem']);
    assert.equal(text.status, 0);
    assert.equal(text.stderr, 'gatehouse scan: could not read /proc/self/mem (EIO): skipped\n');
    assert.equal(text.stdout, 'no credentials found in 0 files; skipped 1 unreadable\n');
  });

  it('reports a file without read permission as skipped', { skip: process.getuid?.() === 0 ? 'root reads a file of mode 000' : false }, () => {
    const locked = join(tmp, 'locked');
    mkdirSync(locked);
    writeFileSync(join(locked, 'a.env'), `KEY=${S.stripe}\n`);
    mkdirSync(join(locked, 'closed'));
    chmodSync(join(locked, 'a.env'), 0o000);
    chmodSync(join(locked, 'closed'), 0o000);
    try {
      const r = gatehouse(['scan', '--json', locked]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual((JSON.parse(r.stdout) as Scan).skipped.map((s) => [relative(locked, s.location), s.reason, s.detail]), [['a.env', 'unreadable', 'EACCES'], ['closed', 'unreadable', 'EACCES']]);
    } finally {
      chmodSync(join(locked, 'a.env'), 0o600);
      chmodSync(join(locked, 'closed'), 0o700);
    }
  });
});

describe('gatehouse scan: the environment', () => {
  const empty = mkdtempSync(join(tmp, 'empty-'));

  it('--env finds a token in a variable (env:NAME) and a long value under a secret-looking name', () => {
    const r = gatehouse(['scan', '--env', '--json'], undefined, { GH_PLANTED: S.env, PLANTED_API_KEY: S.envByName, PLANTED_TOKEN_FILE: join('/run', 'secrets', 'planted') });
    assert.equal(r.status, 1, r.stderr);
    assertNoSecret(r.stdout);
    const scan = JSON.parse(r.stdout) as Scan;
    const mine = scan.findings.filter((f) => f.location.startsWith('env:PLANTED') || f.location.startsWith('env:GH_PLANTED'));
    assert.deepEqual(mine.map((f) => [f.location, f.preview]), [['env:GH_PLANTED', `${S.env.slice(0, 4)}…(40 chars)`], ['env:PLANTED_API_KEY', `${S.envByName.slice(0, 4)}…(20 chars)`]]);
    assert.match((mine[0] as Finding).kind, /github/i);
    assert.equal((mine[1] as Finding).kind, 'env-name');
    assert.equal(scan.filesScanned, 0, '--env alone scans no files');
    const text = gatehouse(['scan', '--env', empty], undefined, { GH_PLANTED: S.env });
    assert.match(text.stdout, /^env:GH_PLANTED {2}\S+ {2}\S{4}…\(40 chars\)$/m);
    assert.match(text.stdout, /found in 0 files and the environment\n$/);
  });

  it('leaves the environment alone without --env', () => {
    const r = gatehouse(['scan', '--json', empty], undefined, { GH_PLANTED: S.env, PLANTED_API_KEY: S.envByName });
    assert.equal(r.status, 0, r.stdout);
    assert.deepEqual(JSON.parse(r.stdout), { findings: [], filesScanned: 0, skipped: [] });
  });
});

/**
 * Files whose findings are known and explained (never real credentials), with the kinds allowed there.
 * Drop an entry once the file is clean; anything else found there still fails.
 */
describe('gatehouse scan: no false alarm in our own sources', () => {
  it('finds nothing in the non-test sources, the default policy and the README', () => {
    // test files and src/testing/ hold fake secrets on purpose
    const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .map((p) => join('src', p))
      .filter((p) => /\.(ts|js|css|html)$/.test(p) && !p.endsWith('.test.ts') && !p.startsWith(join('src', 'testing')))
      .sort();
    assert.ok(sources.length > 40, `only ${sources.length} source files found`);
    const files = [...sources, 'policies/default.yaml', 'README.md'].map((p) => join(ROOT, p));
    const r = gatehouse(['scan', '--json', ...files]);
    const scan = JSON.parse(r.stdout) as Scan;
    assert.equal(scan.filesScanned, files.length, JSON.stringify(scan.skipped));
    assert.deepEqual(scan.findings, []);
  });
});
