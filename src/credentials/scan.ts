import { constants, type Dirent } from 'node:fs';
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { findSecrets, isCredential, type SecretSpan } from '../audit/redact.js';
import { GatehouseError } from '../gatehouse-error.js';

/**
 * Ambient credentials: keys and passwords lying in files and environment variables where an agent
 * could read them. Detection is redact.ts's `findSecrets` (secretlint's preset plus Gatehouse's
 * pattern rules), once per file; this module walks, reads, locates and masks.
 *
 * The weak kinds (`password-assignment`, `password-option`: guesses, per redact.ts's `isCredential`)
 * are kept only where the value is a literal: not a placeholder (`…`, `xxxx`, `{{ }}`), and in a
 * source code file only a quoted `password-assignment`, since there `token: string` or
 * `secret = randomBytes(32)` is code, not a credential. In `.env`, YAML, INI, shell and other
 * files, and in environment values, an unquoted value is literal.
 */

/** One credential found. The secret itself is never kept, only its masked `preview`. */
export interface Finding {
  /**
   * A file's path (relative to the working directory when inside it, else absolute; a relative path
   * that would start with `env:` gets a `./`), or `env:NAME` for an environment variable.
   */
  location: string;
  /** 1-based line of the secret's first character (in an environment value too). */
  line: number;
  /** 1-based column of the secret's first character, in characters (code points). */
  column: number;
  /** The rule that found it (`GITHUB_TOKEN`, `stripe-key`, `PrivateKey`…), or `env-name`. */
  kind: string;
  /** `ghp_…(40 chars)`: the first 4 characters and the length; `…(8 chars)` under 12 characters. */
  preview: string;
}

/** Why a file was not scanned: a NUL byte in its first 8 KiB, over the size cap, or not readable. */
export type SkipReason = 'binary' | 'too-large' | 'unreadable';

export interface Skipped {
  /** As in `Finding.location`; a directory whose entries could not be listed is `unreadable` too. */
  location: string;
  reason: SkipReason;
  /** For `unreadable`: the error code (`EACCES`, …) or message. */
  detail?: string;
}

export interface ScanOptions {
  /** Leave out what `.gitignore` files exclude (nested ones, and those of the enclosing work tree). Default false. */
  gitignore?: boolean;
  /** Files larger than this many bytes are skipped as `too-large`. Default `DEFAULT_MAX_FILE_SIZE` (2 MiB). */
  maxFileSize?: number;
  /** The directory locations are relative to. Default `process.cwd()`. */
  cwd?: string;
  /** Called after each file scanned, with the count so far (for a progress line). */
  onProgress?: (filesScanned: number) => void;
}

export interface FileScan {
  /** In walk order: PATHs as given, each directory's entries by name. */
  findings: Finding[];
  /** Files read and checked (a file reached twice, by two PATHs or hard links, counts once). */
  filesScanned: number;
  skipped: Skipped[];
}

/** The default cap on a scanned file's size, in bytes (2 MiB). */
export const DEFAULT_MAX_FILE_SIZE = 2 * 1024 * 1024;

/** Bytes at the start of a file searched for a NUL to call it binary. */
const BINARY_PROBE = 8 * 1024;
/** Secrets shorter than this (in characters) are previewed by their length alone. */
const MIN_SHOWN = 12;
/** Characters of a secret a preview shows. */
const SHOWN = 4;
/** An environment value under a secret-looking name is reported from this length on (in characters). */
const MIN_ENV_SECRET = 8;

/**
 * Scans files for credentials. A PATH that is a directory is walked whole (hidden files and
 * node_modules included, `.git` directories left out); a PATH that is a file is scanned even when a
 * `.gitignore` excludes it. Symbolic links met in the walk are neither followed nor reported, nor
 * are sockets, FIFOs and devices; a PATH that is itself a symbolic link is followed (as `grep -r`
 * does). Every PATH is checked before anything is read.
 * @param paths files and directories, relative to the working directory or absolute.
 * @returns findings, the number of files scanned, and the files skipped with the reason.
 * @throws GatehouseError `usage` (`data.path`) when a PATH does not exist or is neither a file nor a directory.
 * @example
 *   const { findings } = await scanFiles(['.'], { maxFileSize: 1 << 20 });
 *   // [{ location: 'config/app.yml', line: 3, column: 9, kind: 'GITHUB_TOKEN', preview: 'ghp_…(40 chars)' }]
 */
export async function scanFiles(paths: readonly string[], options: ScanOptions = {}): Promise<FileScan> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const roots: { path: string; isDir: boolean }[] = [];
  const walk: Walk = {
    cwd,
    maxFileSize: options.maxFileSize ?? DEFAULT_MAX_FILE_SIZE,
    gitignore: options.gitignore === true,
    caseless: process.platform === 'darwin' || process.platform === 'win32',
    onProgress: options.onProgress,
    seen: new Set(),
    result: { findings: [], filesScanned: 0, skipped: [] },
  };
  for (const p of paths) {
    const path = resolve(cwd, p);
    try {
      const st = await stat(path);
      if (!st.isFile() && !st.isDirectory()) throw new GatehouseError('usage', `${p} is neither a file nor a directory`, { path: p });
      roots.push({ path, isDir: st.isDirectory() });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new GatehouseError('usage', `${p}: no such file or directory`, { path: p });
      if (code === 'ELOOP') throw new GatehouseError('usage', `${p}: too many levels of symbolic links`, { path: p });
      if (err instanceof GatehouseError) throw err;
      roots.push({ path, isDir: false }); // stat refused (EACCES on a parent): reading it fails the same way and is reported
    }
  }
  for (const root of roots) {
    if (root.isDir) await walkDir(walk, root.path, walk.gitignore ? await enclosingRules(walk, root.path) : []);
    else await scanFile(walk, root.path, false);
  }
  return walk.result;
}

/**
 * Scans environment variables' values: each through the secret rules (located by line and column
 * in the value), and a value of at least 8 characters under a secret-looking name (`…_TOKEN`,
 * `…_SECRET`, `…PASSWORD…`, `…_API_KEY`, `AWS_SECRET_ACCESS_KEY`, `_authToken`…) as kind `env-name`
 * when no rule matched it. Empty values are left out; Gatehouse's own variables are not exempt.
 * @param env usually `process.env`.
 * @returns findings located at `env:NAME`, by name.
 * @example
 *   await scanEnvironment(process.env);
 *   // [{ location: 'env:DEPLOY_TOKEN', line: 1, column: 1, kind: 'env-name', preview: '…(10 chars)' }]
 */
export async function scanEnvironment(env: Readonly<Record<string, string | undefined>>): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const spans = (await findSecrets(value)).filter((sp) => literalEnough(value, sp, false));
    if (spans.length > 0) findings.push(...locate(value, spans, `env:${name}`));
    else if ([...value].length >= MIN_ENV_SECRET && secretLookingName(name)) findings.push({ location: `env:${name}`, line: 1, column: 1, kind: 'env-name', preview: preview(value) });
  }
  return findings;
}

/** The `.gitignore` rules of one directory; paths are tested relative to `base`. */
interface IgnoreLevel {
  base: string;
  rules: Ignore;
}

interface Walk {
  cwd: string;
  maxFileSize: number;
  gitignore: boolean;
  caseless: boolean;
  onProgress: ((filesScanned: number) => void) | undefined;
  /** `dev:ino` of every file opened, so one reached twice is scanned once. */
  seen: Set<string>;
  result: FileScan;
}

async function walkDir(walk: Walk, dir: string, levels: readonly IgnoreLevel[]): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    skip(walk, dir, 'unreadable', err);
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (walk.gitignore && entries.some((e) => e.name === '.gitignore' && e.isFile())) {
    const level = await loadRules(walk, dir);
    if (level !== null) levels = [...levels, level];
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    // Dirent types come from lstat: a symbolic link is never a directory or a file here
    if (e.isDirectory()) {
      if (e.name !== '.git' && !isIgnored(levels, path, true)) await walkDir(walk, path, levels);
    } else if (e.isFile()) {
      if (!isIgnored(levels, path, false)) await scanFile(walk, path, true);
    }
  }
}

/**
 * Reads one file and records what it holds. `noFollow` opens with O_NOFOLLOW, so a file swapped
 * for a symbolic link after the directory was listed is not followed either.
 */
async function scanFile(walk: Walk, path: string, noFollow: boolean): Promise<void> {
  let fh: FileHandle;
  try {
    // O_NONBLOCK: a FIFO swapped in after the listing must not hang the open
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | (noFollow ? constants.O_NOFOLLOW : 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP' && noFollow) return; // became a symbolic link
    skip(walk, path, 'unreadable', err);
    return;
  }
  let text: string;
  try {
    const st = await fh.stat();
    if (!st.isFile()) return;
    const id = `${st.dev}:${st.ino}`;
    if (walk.seen.has(id)) return;
    walk.seen.add(id);
    if (st.size > walk.maxFileSize) return skip(walk, path, 'too-large');
    const bytes = await readAtMost(fh, walk.maxFileSize, st.size);
    if (bytes === null) return skip(walk, path, 'too-large');
    if (bytes.subarray(0, BINARY_PROBE).includes(0)) return skip(walk, path, 'binary');
    text = bytes.toString('utf8');
  } catch (err) {
    return skip(walk, path, 'unreadable', err);
  } finally {
    await fh.close().catch(() => undefined);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte order mark is not column 1
  const code = CODE_EXTENSIONS.has(extname(path).toLowerCase());
  const spans = (await findSecrets(text)).filter((s) => literalEnough(text, s, code));
  walk.result.findings.push(...locate(text, spans, displayPath(walk.cwd, path)));
  walk.result.filesScanned++;
  walk.onProgress?.(walk.result.filesScanned);
}

/** Whether a span is worth reporting: any strong kind; a weak guess only when its value is a literal (see the module comment). */
function literalEnough(text: string, span: SecretSpan, code: boolean): boolean {
  const value = text.slice(span.start, span.end);
  if (isCredential({ text: value, kind: span.kind })) return true;
  if (PLACEHOLDER.test(value)) return false;
  if (!code) return true;
  if (span.kind !== 'password-assignment') return false;
  const before = text[span.start - 1];
  return before === '"' || before === "'" || before === '`';
}

/** Values that stand for a secret rather than being one. */
const PLACEHOLDER = /…|\.\.\.|\*\*\*|xxxx|\{\{|%\(|^(redacted|placeholder|your_?\w*)$/i;

/** Source code (and source maps), where an unquoted value after `token:` or `password =` is an expression or a type. */
const CODE_EXTENSIONS = new Set(['.map', '.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs', '.py', '.rb', '.go', '.rs', '.java', '.kt', '.kts', '.scala', '.swift', '.c', '.h', '.cc', '.cpp', '.hpp', '.cs', '.php', '.lua', '.dart', '.ex', '.exs', '.vue', '.svelte']);

/** The file's bytes, or null when there are more than `max` (it may have grown since its stat). */
async function readAtMost(fh: FileHandle, max: number, sizeHint: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (let want = Math.min(sizeHint, max) + 1; ; want = Math.min(64 * 1024, max + 1 - total)) {
    const chunk = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(chunk, 0, want, null);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    chunks.push(chunk.subarray(0, bytesRead));
    total += bytesRead;
    if (total > max) return null;
  }
}

function skip(walk: Walk, path: string, reason: SkipReason, err?: unknown): void {
  const e = err as NodeJS.ErrnoException | undefined;
  walk.result.skipped.push({ location: displayPath(walk.cwd, path), reason, ...(e === undefined ? {} : { detail: e.code ?? e.message ?? String(err) }) });
}

/** Findings for the spans of `text`, with line and column and a masked preview. */
function locate(text: string, spans: readonly SecretSpan[], location: string): Finding[] {
  if (spans.length === 0) return [];
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return spans.map((s) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= s.start) lo = mid;
      else hi = mid - 1;
    }
    const column = [...text.slice(starts[lo], s.start)].length + 1;
    return { location, line: lo + 1, column, kind: s.kind, preview: preview(text.slice(s.start, s.end)) };
  });
}

/**
 * A masked secret: its first 4 characters (control characters escaped), `…` and its length in
 * characters; under 12 characters, the length alone.
 */
function preview(secret: string): string {
  const chars = [...secret];
  const shown = chars.length < MIN_SHOWN ? '' : printable(chars.slice(0, SHOWN).join(''));
  return `${shown}…(${chars.length} chars)`;
}

/**
 * `text` safe to print on a terminal: control characters, line separators and bidirectional
 * overrides (which could hide or reorder what a reviewer reads) become `\u{…}` escapes.
 */
export function printable(text: string): string {
  return text.replace(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
}

function displayPath(cwd: string, path: string): string {
  const rel = relative(cwd, path);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return path;
  return rel.startsWith('env:') ? `.${sep}${rel}` : rel;
}

/**
 * Secret-looking variable names: a word (split at `_`, `-`, `.` and camelCase) ending in token,
 * secret, passphrase, apikey or containing password/passwd, or api/secret/access/private followed
 * by key; unless the name ends in a word that points elsewhere (`…_PASSWORD_FILE`,
 * `ACTIONS_ID_TOKEN_REQUEST_URL`, `AWS_ACCESS_KEY_ID`).
 */
function secretLookingName(name: string): boolean {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().split(/[^a-z0-9]+/).filter((w) => w !== '');
  const last = words[words.length - 1];
  if (last === undefined || POINTER_WORDS.has(last)) return false;
  return words.some((w, i) => /(token|secret|passphrase|apikey)$|passw(or)?d/.test(w) || (w === 'key' && KEY_QUALIFIERS.has(words[i - 1] ?? '')));
}

const POINTER_WORDS = new Set(['file', 'files', 'dir', 'path', 'url', 'uri', 'host', 'port', 'user', 'username', 'id', 'name', 'type', 'length', 'len', 'helper', 'command', 'cmd', 'prompt', 'store', 'sock', 'socket', 'enabled', 'required']);
const KEY_QUALIFIERS = new Set(['api', 'secret', 'access', 'private', 'signing', 'encryption', 'master']);

/**
 * The `.gitignore` files above a walked directory, from the top of its git work tree (the nearest
 * ancestor holding `.git`) down to its parent; none when it is not inside a work tree.
 */
async function enclosingRules(walk: Walk, dir: string): Promise<IgnoreLevel[]> {
  if (await exists(join(dir, '.git'))) return []; // the top of a work tree: what is above is another repository's
  const ancestors: string[] = [];
  for (let d = dirname(dir); ; d = dirname(d)) {
    ancestors.unshift(d);
    if (await exists(join(d, '.git'))) break;
    if (dirname(d) === d) return [];
  }
  const levels: IgnoreLevel[] = [];
  for (const d of ancestors) {
    const level = await loadRules(walk, d);
    if (level !== null) levels.push(level);
  }
  return levels;
}

async function loadRules(walk: Walk, dir: string): Promise<IgnoreLevel | null> {
  try {
    return { base: dir, rules: ignore({ ignorecase: walk.caseless }).add(await readFile(join(dir, '.gitignore'), 'utf8')) };
  } catch {
    return null; // no .gitignore there, or unreadable: nothing is left out, so nothing is missed
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Git's precedence: the deepest `.gitignore` with a rule matching the path decides; a negated rule
 * (`!keep.env`) there keeps the path even when a shallower file ignores it.
 */
function isIgnored(levels: readonly IgnoreLevel[], path: string, isDir: boolean): boolean {
  for (let i = levels.length - 1; i >= 0; i--) {
    const level = levels[i] as IgnoreLevel;
    const rel = relative(level.base, path);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) continue;
    let verdict: ignore.TestResult;
    try {
      verdict = level.rules.test(rel.split(sep).join('/') + (isDir ? '/' : ''));
    } catch {
      continue; // a name the ignore package refuses: scanned rather than silently left out
    }
    if (verdict.unignored) return false;
    if (verdict.ignored) return true;
  }
  return false;
}
