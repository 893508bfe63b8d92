import type { Context, Part, PartTag, Word } from '../action.js';
import { httpPart } from '../http/analyze.js';
import { resolvePath } from '../paths.js';
import type { Env, Stdin } from './analyze.js';
import { join, shellPart, UNKNOWN_PIECE } from './analyze.js';
import { credentialNamesMatching, plainOrDeep } from '../files.js';
import { clip, shellQuote } from '../text.js';
import { parseArgv, type ParsedArgv } from './argv.js';
import { commandsRun } from './runners.js';

/**
 * What programs mean: wrappers that run another command, shells and interpreters that run code,
 * SQL clients, and the files and URLs that common programs read, write and call. Each becomes
 * parts of its own, so the policy judges the effect, not the spelling.
 */

/** The walker's services that program semantics call back into. */
export interface Runner {
  readonly ctx: Context;
  /** Paths written by earlier parts of the same action. */
  readonly written: ReadonlySet<string>;
  emit(part: Part): void;
  fail(reason: string): never;
  nested(env: Env, where: string): Env;
  script(text: string, env: Env, stdin: Stdin): void;
  simple(words: Word[], env: Env, stdin: Stdin, info: { text: string; assigns: string[]; tags: PartTag[]; expands?: string[]; shapes?: (string | null)[] }): Stdin;
  sql(text: string, env: Env, where: string, mysql?: boolean): void;
}

export interface Invocation {
  program: string;
  /** Words after the program name. */
  words: Word[];
  env: Env;
  stdin: Stdin;
  text: string;
  assigns: string[];
  /** Variables the command's words expand. */
  expands: string[];
  tags: PartTag[];
  /** Resolved path when the program was named by a path outside the system's bin directories. */
  script: Word;
  /** For each word whose value is unknown, its partly known shape (`/proc/∗/environ`), else null. */
  shapes: (string | null)[];
}

const SHELLS = new Set(['bash', 'sh', 'zsh', 'dash', 'ksh', 'ash', 'mksh', 'fish']);
/** Interpreter → normalized option names that carry inline code. */
const INTERPRETERS: Record<string, string[]> = {
  python: ['command'], python3: ['command'], python2: ['command'], pypy: ['command'], pypy3: ['command'],
  node: ['eval', 'print'], nodejs: ['eval', 'print'], bun: ['eval', 'print'], deno: [],
  perl: ['e', 'E'], ruby: ['e'], php: ['r'], lua: ['e'], Rscript: ['e'], osascript: ['e'],
  pwsh: ['c', 'Command', 'command'], powershell: ['c', 'Command', 'command'], tclsh: [], irb: [], jshell: [],
};
const SQL_CLIENTS = new Set(['psql', 'mysql', 'mariadb', 'sqlite3']);
/** Programs whose every positional is a file they read. */
const READERS = new Set([
  'cat', 'tac', 'head', 'tail', 'less', 'more', 'bat', 'batcat', 'nl', 'base64', 'base32', 'xxd', 'od', 'hexdump',
  'strings', 'wc', 'sort', 'uniq', 'md5sum', 'sha1sum', 'sha256sum', 'sha512sum', 'cksum', 'file', 'diff', 'cmp',
  'comm', 'fold', 'fmt', 'column', 'rev', 'zcat', 'bzcat', 'xzcat', 'zless', 'source', '.', 'view', 'hexyl', 'iconv',
  'cut', 'paste', 'expand', 'unexpand', 'join', 'shuf', 'numfmt', 'pr', 'tsort', 'sum', 'b2sum', 'sha224sum', 'sha384sum',
  'gzip', 'gunzip', 'bzip2', 'bunzip2', 'xz', 'unxz', 'zstd', 'lz4', 'brotli', 'uuencode', 'hd', 'split', 'csplit', 'look',
  'diff3', 'sdiff', 'xclip', 'xsel', 'wl-copy', 'pbcopy', 'lp', 'lpr', 'enscript', 'a2ps', 'mail', 'mutt',
]);

/** Build and test tools, and the files in the working directory that decide what they run. */
const BUILD_FILES: Record<string, string[]> = {
  make: ['Makefile', 'makefile', 'GNUmakefile'], npm: ['package.json', '.npmrc'], pnpm: ['package.json', '.npmrc'], yarn: ['package.json', '.yarnrc.yml'],
  bun: ['package.json', 'bunfig.toml'], npx: ['package.json'], pytest: ['conftest.py', 'pytest.ini', 'pyproject.toml', 'setup.cfg', 'tox.ini'],
  tox: ['tox.ini', 'pyproject.toml'], cargo: ['Cargo.toml', 'build.rs'], go: ['go.mod'], gradle: ['build.gradle', 'build.gradle.kts', 'settings.gradle'],
  mvn: ['pom.xml'], rake: ['Rakefile'], bundle: ['Gemfile'], composer: ['composer.json'], just: ['justfile', 'Justfile'], cmake: ['CMakeLists.txt'],
  pip: ['setup.py', 'pyproject.toml', 'requirements.txt'], pip3: ['setup.py', 'pyproject.toml', 'requirements.txt'], poetry: ['pyproject.toml'], uv: ['pyproject.toml'],
  docker: ['Dockerfile', 'docker-compose.yml', 'compose.yaml', 'docker-compose.yaml'],
};
/** Python modules whose command line reads (or, for archives, writes) the files it is given. */
const FILE_MODULES = new Set(['base64', 'zipfile', 'tarfile', 'gzip', 'json.tool', 'uu', 'quopri', 'binascii', 'filecmp', 'tokenize', 'py_compile', 'pickletools', 'shlex', 'mimetypes']);

/** Programs whose first positional is a pattern or program and the rest are files they read. */
const PATTERN_READERS = new Set(['grep', 'egrep', 'fgrep', 'rg', 'ag', 'ack', 'sed', 'awk', 'gawk', 'mawk', 'jq', 'yq']);
/** Programs whose every positional is a file they create, change or remove. */
const WRITERS = new Set(['tee', 'touch', 'mkdir', 'rmdir', 'rm', 'shred', 'unlink', 'truncate', 'mv']);
/** Programs whose first positional is a mode or owner and the rest files they change. */
const MODE_WRITERS = new Set(['chmod', 'chown', 'chgrp', 'chattr', 'setfacl']);

/**
 * Emits the parts of one simple command and returns what it writes to standard output.
 * @throws through `run.fail` when a nested script cannot be analyzed.
 */
export function applySemantics(run: Runner, inv: Invocation): Stdin {
  const { program, words, env } = inv;
  const unknownOut: Stdin = { unknown: `the output of \`${clip(inv.text)}\`` };

  const resolve = (w: Word) => resolvePath(w, env.cwd, run.ctx.home);
  const file = (kind: 'file_read' | 'file_write', w: Word, what: string, wordIndex?: number): void => {
    const path = resolve(w);
    // an unknown name with known pieces (`/proc/$PID/environ`) is also judged as the pattern it must match
    const shape = w === null && wordIndex !== undefined ? inv.shapes[wordIndex] ?? null : null;
    if (shape !== null) file(kind, shape.replaceAll(UNKNOWN_PIECE, '*'), what);
    if (path === null && program === 'mkdir') return; // creating a directory cannot overwrite or delete anything
    const tags: PartTag[] = path === null || inv.tags.includes('unknown-target') ? ['unknown-target'] : [];
    if (path !== null && /[*?[]/.test(path)) tags.push('glob');
    run.emit({ kind, path, origin: join(`${what} by \`${clip(inv.text)}\``, env.where), tags });
    if (path !== null && tags.includes('glob')) {
      const slash = path.lastIndexOf('/');
      const dir = path.slice(0, slash);
      const name = path.slice(slash + 1);
      if (plainOrDeep(dir) && /[*?[]/.test(name)) {
        for (const candidate of credentialNamesMatching(name)) {
          run.emit({ kind, path: `${dir}/${candidate}`, origin: join(`a file the pattern of \`${clip(inv.text)}\` can match`, env.where), tags: ['glob'] });
        }
      }
    }
  };

  const wrapped = unwrap(program, words);
  if (wrapped !== null) {
    const own = parseArgv(program, wrapped.own);
    const tags: PartTag[] = [...inv.tags, 'wrapper'];
    if (wrapped.inner.length === 0 && wrapped.dumpsEnv) tags.push('env-dump');
    if (wrapped.lookupOnly) tags.push('lookup-only');
    emitShell(run, inv, own, tags);
    if (wrapped.inner.length === 0 && wrapped.innerScript === undefined) return wrapped.dumpsEnv ? { unknown: 'the environment' } : unknownOut;
    const inner = run.nested({ ...env }, `the command run by \`${program}\``);
    if (wrapped.cwd !== undefined) inner.cwd = wrapped.cwd === null ? null : resolvePath(wrapped.cwd, env.cwd, run.ctx.home);
    if (wrapped.innerScript !== undefined) {
      if (wrapped.innerScript === null) return unknownOut;
      run.script(wrapped.innerScript, inner, inv.stdin);
      return unknownOut;
    }
    let innerWords = wrapped.inner;
    let unknownTarget = wrapped.unknownTarget;
    if (wrapped.argFile !== undefined) file('file_read', wrapped.argFile, 'the argument file');
    if (program === 'xargs' && wrapped.argFile === undefined && inv.stdin !== null && 'text' in inv.stdin) {
      // input we can see: the arguments xargs appends are known
      const items = inv.stdin.text.split(wrapped.nulSeparated ? '\0' : wrapped.replace !== undefined ? '\n' : /\s+/).filter((w) => w !== '');
      innerWords = wrapped.replace !== undefined
        ? wrapped.xargsCommand.flatMap((w) => (w !== null && w.includes(wrapped.replace as string) ? items.map((i) => w.split(wrapped.replace as string).join(i)) : [w]))
        : [...wrapped.xargsCommand, ...items];
      unknownTarget = false;
    } else if (program === 'xargs' && wrapped.argFile === undefined && inv.stdin !== null && 'unknown' in inv.stdin && inv.stdin.paths !== undefined) {
      // a listing of paths: every argument matches the listing's glob
      const glob = inv.stdin.paths;
      innerWords = wrapped.replace !== undefined
        ? wrapped.xargsCommand.map((w) => (w !== null && w.includes(wrapped.replace as string) ? glob : w))
        : [...wrapped.xargsCommand, glob];
      unknownTarget = false;
    }
    const innerTags: PartTag[] = unknownTarget ? ['unknown-target'] : [];
    // the wrapped words are usually the tail of the wrapper's own: their shapes carry over
    const offset = words.length - innerWords.length;
    const shapes = offset >= 0 && innerWords.every((w, i) => w === words[offset + i]) ? inv.shapes.slice(offset + 1) : [];
    return run.simple(innerWords, inner, inv.stdin, { text: wrapped.inner.map((w) => w ?? '$?').join(' '), assigns: wrapped.assigns, tags: innerTags, expands: inv.expands, shapes });
  }

  if (program === 'find') return find(run, inv);

  const oldStyle = program === 'tar' && typeof words[0] === 'string' && /^[A-Za-z]+$/.test(words[0]);
  const parsed = parseArgv(program, oldStyle ? ['-' + (words[0] as string), ...words.slice(1)] : words);
  if ((program === 'docker' || program === 'podman') && parsed.subcommand === 'container' && typeof parsed.args[0] === 'string') {
    parsed.subcommand = parsed.args.shift() as string; // `docker container rm` is `docker rm`
  }
  if (program === 'printenv') parsed.args = parsed.args.filter((a) => a === null || !a.startsWith('-'));
  const tags: PartTag[] = [...inv.tags];
  const { args, options, flags } = parsed;

  // directory changes, seen by the commands after this one in the same scope
  if (program === 'cd' || program === 'pushd') env.cwd = args.length === 0 ? run.ctx.home : args[0] === '-' ? null : resolve(args[0] as Word);
  if (program === 'popd') env.cwd = null;

  // builtins that assign variables make them unknown from here on
  const assigned = program === 'read' || program === 'mapfile' || program === 'readarray' || program === 'getopts'
    ? args.filter((a): a is string => a !== null).slice(program === 'getopts' ? 1 : 0)
    : program === 'printf' && typeof options.v === 'string' ? [options.v]
    : ['declare', 'typeset', 'local', 'export'].includes(program) && flags.includes('n') ? args.filter((a): a is string => a !== null).map((a) => a.split('=')[0] as string)
    : [];
  if (assigned.length > 0) {
    const vars = new Map(env.vars ?? []);
    for (const n of assigned) vars.set(n, null);
    env.vars = vars;
  }
  const dumps =
    (program === 'printenv' && (args.length === 0 || args.some((a) => a === null))) ||
    (program === 'set' && words.length === 0) ||
    (program === 'compgen' && flags.some((f) => f === 'v' || f === 'e')) ||
    (['export', 'declare', 'typeset', 'readonly'].includes(program) && args.length === 0 && !flags.includes('f') && !flags.includes('F')) ||
    ((program === 'jq' || program === 'gojq') && !('from-file' in options) && /(^|[^\w$.])(env|\$ENV)\b/.test(args[0] ?? '')) ||
    (program === 'make' && flags.includes('print-data-base')) ||
    (['awk', 'gawk', 'mawk'].includes(program) && /\bENVIRON\b/.test(args[0] ?? '')) ||
    ((program === 'docker' || program === 'podman') && parsed.subcommand === 'inspect' && !/^\{\{[^}]*\}\}$/.test(options.format ?? '') ) ||
    ((program === 'docker' || program === 'podman') && parsed.subcommand === 'inspect' && /Env/.test(options.format ?? '')) ||
    (program === 'systemctl' && (parsed.subcommand === 'show-environment' || args.includes('show-environment'))) ||
    inv.expands.includes('!');
  if (dumps) tags.push('env-dump');
  if ((program === 'jq' || program === 'gojq') && args[0] === null) tags.push('inline-code'); // a filter from an expansion

  let script = inv.script;
  let out: Stdin = unknownOut;

  if (SHELLS.has(program)) {
    if (flags.includes('c')) {
      const code = args[0];
      if (code === undefined || code === null) tags.push('inline-code');
      else run.script(code, run.nested({ ...env }, `the script of \`${program} -c\``), null);
    } else if (args.length > 0 && !flags.includes('s') && args[0] !== '-') {
      tags.push('script-file');
      script = resolve(args[0] as Word);
    } else if (inv.stdin !== null) {
      // no script file (or `-s`, or `-`): the shell runs what arrives on its input; piped code
      // is code of unknown provenance (it asks) and is still read for what it would do
      if ('text' in inv.stdin) {
        if (inv.stdin.piped) tags.push('stdin-code');
        run.script(inv.stdin.text, run.nested({ ...env }, `the script \`${program}\` reads on its input`), null);
      } else tags.push('stdin-code');
    } else if (flags.includes('s') || args[0] === '-') tags.push('stdin-code');
  } else if (program === 'eval') {
    // eval takes no options: every word is text to run
    const text = words[0] === '--' ? words.slice(1) : words;
    if (text.some((a) => a === null)) tags.push('inline-code');
    else run.script(text.join(' '), run.nested({ ...env }, 'the text run by `eval`'), null);
  } else if (program === 'trap' && args.length >= 2 && args[0] !== '-') {
    // `trap 'CMD' SIGNAL…` runs CMD later, on the signal or at exit
    if (args[0] === null) tags.push('inline-code');
    else if (args[0] !== '') run.script(args[0] as string, run.nested({ ...env }, 'the command `trap` runs on a signal'), null);
  } else if (program in INTERPRETERS) {
    const inline = (INTERPRETERS[program] as string[]).some((o) => o in options) || (program === 'deno' && parsed.subcommand === 'eval');
    // code preloaded from a path, a URL or a data: URL (`node --import`, `-r`, `perl -M`)
    for (const o of ['require', 'import', 'loader', 'experimental-loader', 'r', 'M', 'I']) {
      for (const v of parsed.values[o] ?? []) if (v === null || /^(data:|https?:)/.test(v) || v.includes('/') || v.startsWith('.')) tags.push(v !== null && !/^data:/.test(v) ? 'script-file' : 'inline-code');
    }
    if (inline) tags.push('inline-code');
    else if (program === 'deno' && parsed.subcommand === 'run' && args[0] !== undefined) { tags.push('script-file'); script = resolve(args[0]); }
    else if (!('module' in options) && program !== 'deno' && args.length > 0 && args[0] !== '-' && !(program === 'node' && flags.includes('test'))) {
      tags.push('script-file');
      script = resolve(args[0] as Word);
    } else if (inv.stdin !== null && !('module' in options)) tags.push('stdin-code');
  } else if (program === 'source' || program === '.') {
    tags.push('script-file');
    script = resolve(args[0] ?? null);
  } else if (SQL_CLIENTS.has(program)) {
    script = sqlClient(run, inv, parsed, tags) ?? script;
  } else if (program === 'make' && options.file !== undefined && options.file !== '-') {
    tags.push('script-file'); // a makefile runs its recipes
    script = resolve(options.file as Word);
  }

  // standard output that a later pipeline stage can read as text
  if (program === 'echo' && words.every((a) => a !== null)) {
    // echo's only options are leading -n, -e, -E (and their combinations); every other word is printed
    let i = 0;
    let newline = true;
    while (i < words.length && /^-[neE]+$/.test(words[i] as string)) newline = newline && !(words[i] as string).includes('n'), i++;
    out = { text: (words.slice(i) as string[]).join(' ') + (newline ? '\n' : '') };
  } else if (program === 'printf' && args.every((a) => a !== null)) {
    const words2 = args as string[];
    if (words2.length === 1 && !(words2[0] as string).includes('%')) out = { text: (words2[0] as string).replace(/\\n/g, '\n').replace(/\\t/g, '\t') };
  } else if (program === 'pwd' && env.cwd !== null) {
    out = { text: env.cwd + '\n' };
  } else if (program === 'cat' && args.length === 0 && inv.stdin !== null) {
    out = inv.stdin;
  } else if (program === 'base64' && flags.includes('decode') && args.length === 0 && inv.stdin !== null && 'text' in inv.stdin) {
    const decoded = decodeBase64(inv.stdin.text);
    if (decoded !== null) out = { text: decoded };
  }

  // commands this program runs for us: `uv run CMD`, `git submodule foreach CMD`, `su -c CMD`…
  const remote = program === 'ssh' || program === 'gcloud'; // another machine: its directories are unknown here
  for (const inner of commandsRun(program, words, parsed)) {
    const innerEnv = run.nested({ ...env, cwd: remote ? null : env.cwd }, inner.where);
    if ('argv' in inner) run.simple(inner.argv, innerEnv, null, { text: inner.argv.map((w) => w ?? '$?').join(' '), assigns: [], tags: [] });
    else if (inner.script === null) tags.push('inline-code');
    else run.script(inner.script, innerEnv, null);
  }
  if ((program === 'at' || program === 'batch') && inv.stdin !== null) {
    if ('text' in inv.stdin) run.script(inv.stdin.text, run.nested({ ...env }, `the job \`${program}\` schedules`), null);
    else tags.push('stdin-code');
  }
  const listed = listedPaths(program, parsed, env.cwd);
  if (listed !== null) out = { unknown: `the paths \`${clip(inv.text)}\` lists`, paths: listed };
  if (script !== null && run.written.has(script)) tags.push('inline-code'); // written by this very action: content unseen
  // a build or test tool reads files that say what to run: written by this very action, their content is unseen
  const buildFiles = BUILD_FILES[program];
  if (buildFiles !== undefined && env.cwd !== null && buildFiles.some((f) => run.written.has(`${env.cwd}/${f}`))) tags.push('inline-code');
  if ((program === 'python' || program === 'python3') && typeof options.module === 'string' && FILE_MODULES.has(options.module)) {
    args.forEach((a, i) => file(i === args.length - 1 && /zipfile|tarfile/.test(options.module as string) && args.length > 1 ? 'file_write' : 'file_read', a, `a file \`python -m ${options.module}\` opens`, parsed.argIndex[i]));
  }
  if (program === 'git') gitFacts(parsed, tags, file);
  if (program === 'openssl' || program === 'ssh-keygen' || program === 'gpg') {
    for (const o of ['in', 'key', 'inkey', 'f', 'CAkey', 'signkey', 'import']) if (typeof options[o] === 'string' || options[o] === null) file('file_read', options[o] as Word, 'a key or file read');
    if (options.out !== undefined) file('file_write', options.out as Word, 'the output file');
  }
  if (runsEmbeddedCode(program, parsed, words)) tags.push('inline-code');
  if (program === 'jq' || program === 'gojq') {
    words.forEach((w, i) => {
      if (w === '--rawfile' || w === '--slurpfile') file('file_read', (words[i + 2] ?? null) as Word, 'a file jq reads');
    });
  }
  emitShell(run, { ...inv, script }, parsed, tags);

  // files and URLs the program touches
  const at = (i: number) => parsed.argIndex[i];
  if (READERS.has(program)) args.forEach((a, i) => file('file_read', a, 'a file read', at(i)));
  if (PATTERN_READERS.has(program)) {
    const explicitPattern = ['regexp', 'expression', 'file', 'from-file'].some((o) => o in options);
    const first = explicitPattern ? 0 : 1;
    const files = args.map((a, i) => [a, i] as const).slice(first).filter(([a]) => a === null || !(program.endsWith('awk') && /^\w+=/.test(a)));
    const writes = program === 'sed' && flags.includes('in-place');
    for (const [a, i] of files) file(writes ? 'file_write' : 'file_read', a, writes ? 'a file edited in place' : 'a file read', at(i));
    const recursive = flags.includes('recursive') || ['rg', 'ag', 'ack'].includes(program);
    if (files.length === 0 && recursive) run.emit({ kind: 'file_read', path: env.cwd, origin: join(`the directory searched by \`${clip(inv.text)}\``, env.where), tags: [] });
    // a recursive search told to include files by name reads those files wherever they are
    for (const include of [...(parsed.values.include ?? []), ...(parsed.values.glob ?? [])]) {
      if (include === null || !recursive) continue;
      const dirs = files.length > 0 ? files.map(([a]) => resolve(a)) : [env.cwd];
      for (const d of dirs) if (d !== null) file('file_read', `${d === '/' ? '' : d}/**/${include.replace(/^!/, '')}`, 'the files a recursive search includes');
    }
  }
  if (WRITERS.has(program)) args.forEach((a, i) => file('file_write', a, program === 'rm' || program === 'shred' || program === 'unlink' ? 'a file removed' : 'a file written', at(i)));
  if (program === 'mv' && typeof options['target-directory'] === 'string') {
    for (const a of args) if (a !== null) file('file_write', `${options['target-directory']}/${a.replace(/\/+$/, '').split('/').pop()}`, 'the destination');
  }
  if (MODE_WRITERS.has(program)) (('reference' in options) ? args : args.slice(1)).forEach((a) => file('file_write', a, 'a file changed'));
  if (['cp', 'ln', 'install', 'rsync', 'scp'].includes(program)) copyFiles(program, parsed, file);
  if ((program === 'docker' || program === 'podman' || program === 'kubectl') && parsed.subcommand === 'cp') copyFiles(program, parsed, file);
  if (program === 'gcloud' && ((parsed.subcommand === 'storage' && ['cp', 'mv', 'rsync'].includes(String(args[0]))) || (parsed.subcommand === 'compute' && args[0] === 'scp'))) {
    copyFiles(program, { ...parsed, args: args.slice(1) }, file);
  }
  if (program === 'sort' && options.output !== undefined) file('file_write', options.output, 'the output file');
  if (program === 'unzip') file('file_write', `${options.exdir ?? '.'}/**`, 'the files extracted');
  if (program === 'perl' && flags.includes('i')) args.forEach((a) => file('file_write', a, 'a file edited in place'));
  if (program === 'sed') for (const target of sedWrites(options.expression !== undefined ? (parsed.values.expression ?? []) : [args[0] ?? null])) file('file_write', target, 'a file sed writes');
  if (program === 'gh') ghFiles(parsed, file);
  if (program === 'git' && ['commit', 'tag', 'notes', 'merge'].includes(String(parsed.subcommand)) && options.file !== undefined) file('file_read', options.file, 'a message file');
  if (program === 'git' && parsed.subcommand === 'hash-object') args.forEach((a) => file('file_read', a, 'a file git stores'));
  if (program === 'sqlite3' && args[0] !== undefined) file('file_read', args[0], 'the database');
  if (program === 'dd') {
    words.forEach((w, i) => {
      const shape = w === null ? inv.shapes[i] ?? null : null;
      const operand = w ?? shape?.replaceAll(UNKNOWN_PIECE, '*') ?? null;
      if (operand?.startsWith('if=')) file('file_read', operand.slice(3), 'the input');
      if (operand?.startsWith('of=')) file('file_write', operand.slice(3), 'the output');
      if (w === null && shape === null) file('file_write', null, 'an operand from an expansion');
    });
  }
  if (program === 'tar') {
    const archive = options.file;
    if (flags.includes('create')) { if (archive !== undefined) file('file_write', archive, 'the archive'); args.forEach((a) => file('file_read', a, 'a file archived')); }
    if (flags.includes('extract')) {
      if (archive !== undefined) file('file_read', archive, 'the archive');
      file('file_write', options.directory ?? '.', 'the directory extracted into');
    }
  }
  if (program === 'zip' || program === '7z' || program === 'rar') {
    const members = program === 'zip' ? args.slice(1) : args.slice(2);
    const archive = program === 'zip' ? args[0] : args[1];
    if (archive !== undefined) file('file_write', archive, 'the archive');
    members.forEach((a) => file('file_read', a, 'a file archived'));
  }
  // cloud copies: a local source is read (uploaded), a local destination written
  const cloudCopy = program === 'aws' && parsed.subcommand === 's3' && ['cp', 'mv', 'sync'].includes(String(args[0])) ? args.slice(1)
    : program === 'gsutil' && ['cp', 'mv', 'rsync'].includes(String(parsed.subcommand)) ? args : null;
  cloudCopy?.forEach((a, i) => {
    if (a !== null && /^[a-z0-9]+:\/\//i.test(a)) return;
    const last = i === cloudCopy.length - 1;
    file(last ? 'file_write' : 'file_read', a, last ? 'the destination' : 'a file uploaded');
  });
  if (program === 'curl' || program === 'wget' || program === 'http' || program === 'https' || program === 'xh') web(run, inv, parsed, file);
  if (program === 'ssh') remoteCommand(run, inv, parsed);
  if ((program === 'docker' || program === 'podman' || program === 'kubectl') && parsed.subcommand === 'exec') containerCommand(run, inv, words);
  if (program === 'crontab' && args.length > 0 && args[0] !== '-') file('file_read', args[0] as Word, 'the crontab file');

  return out;
}

function emitShell(run: Runner, inv: Invocation, parsed: ParsedArgv, tags: PartTag[]): void {
  if (parsed.args.some((a) => a !== null && /[*?[]/.test(a))) tags = [...tags, 'glob'];
  run.emit(shellPart({ program: inv.program, ...parsed, assigns: inv.assigns, expands: inv.expands, tags: [...new Set(tags)], script: inv.script, env: inv.env, text: inv.text, ctx: run.ctx }));
}

interface Unwrapped {
  /** The wrapper's own option words. */
  own: Word[];
  /** The wrapped command's words; empty when there is none. */
  inner: Word[];
  /** Shell text the wrapper runs instead of argv (`watch`, `env -S`, `parallel` with a command string); null when unknown. */
  innerScript?: string | null;
  assigns: string[];
  dumpsEnv: boolean;
  lookupOnly: boolean;
  unknownTarget: boolean;
  cwd?: Word;
  /** xargs: the file it reads arguments from (`-a`). */
  argFile?: Word;
  /** xargs: the replacement string (`-I R`). */
  replace?: string;
  nulSeparated?: boolean;
  /** xargs: the command before arguments are added. */
  xargsCommand: Word[];
}

/** Option letters (or long names) that take a value, per wrapper; `--name=value` always does. */
const WRAPPER_VALUES: Record<string, Set<string>> = {
  sudo: new Set(['-u', '-g', '-h', '-p', '-C', '-D', '-r', '-t', '-U', '-T', '-a', '--user', '--group', '--host', '--prompt', '--close-from', '--chdir', '--role', '--type', '--other-user', '--command-timeout']),
  doas: new Set(['-u', '-C']),
  env: new Set(['-u', '--unset', '-C', '--chdir', '-S', '--split-string']),
  timeout: new Set(['-s', '--signal', '-k', '--kill-after']),
  nice: new Set(['-n', '--adjustment']),
  ionice: new Set(['-c', '--class', '-n', '--classdata']),
  stdbuf: new Set(['-i', '-o', '-e', '--input', '--output', '--error']),
  time: new Set(['-f', '--format', '-o', '--output']),
  exec: new Set(['-a']),
  watch: new Set(['-n', '--interval', '-q', '--equexit']),
  xargs: new Set(['-a', '--arg-file', '-d', '--delimiter', '-E', '-I', '--replace', '-L', '--max-lines', '-n', '--max-args', '-P', '--max-procs', '-s', '--max-chars', '--process-slot-var']),
  parallel: new Set(['-j', '--jobs', '-S', '--sshlogin', '--joblog', '-a', '--arg-file', '--delay', '--timeout', '--results', '-I', '--tmpdir', '--workdir', '--colsep']),
  setsid: new Set(),
  nohup: new Set(),
  builtin: new Set(),
  command: new Set(),
  chronic: new Set(),
  unbuffer: new Set(),
  valgrind: new Set(),
  strace: new Set(['-o', '-p', '-e', '-s', '-a', '-E', '-u', '-P', '-X']),
  ltrace: new Set(['-o', '-p', '-e', '-s', '-a', '-u']),
  entr: new Set(),
  firejail: new Set(),
  proxychains: new Set(['-f']),
  proxychains4: new Set(['-f']),
  torsocks: new Set(['-u', '-p', '-a', '-P']),
  catchsegv: new Set(),
  caffeinate: new Set(['-t', '-w']),
  dotenv: new Set(['-e', '-v', '-c']),
};

/** Splits a wrapper's words into its own options and the command it runs; null for non-wrappers. */
function unwrap(program: string, words: Word[]): Unwrapped | null {
  const values = WRAPPER_VALUES[program];
  if (values === undefined) return null;
  const result: Unwrapped = { own: [], inner: [], assigns: [], dumpsEnv: false, lookupOnly: false, unknownTarget: false, xargsCommand: [] };
  let i = 0;
  let split: Word | undefined;
  let replace: string | undefined;
  // options
  for (; i < words.length; i++) {
    const w = words[i] as Word;
    if (w === null) break;
    if (w === '--') { i++; break; }
    if (program === 'nice' && /^-\d+$/.test(w)) { result.own.push(w); continue; }
    if (!w.startsWith('-') || w === '-') break;
    result.own.push(w);
    const eq = w.indexOf('=');
    let name = eq >= 0 && w.startsWith('--') ? w.slice(0, eq) : w;
    let value: Word | undefined = eq >= 0 && name.startsWith('--') ? w.slice(eq + 1) : undefined;
    if (!name.startsWith('--') && name.length > 2) {
      // a cluster (`-tI R`): the first letter that takes a value takes the rest, or the next word
      const at = [...name.slice(1)].findIndex((c) => values.has(`-${c}`));
      if (at >= 0) {
        value = name.slice(at + 2) || undefined;
        name = `-${name[at + 1]}`;
      }
    }
    if (value === undefined && values.has(name)) { value = (words[i + 1] ?? null) as Word; result.own.push(value); i++; }
    const key = name.startsWith('--') ? name : name.slice(0, 2);
    if (program === 'env' && (key === '-S' || key === '--split-string')) split = value ?? null;
    if (program === 'env' && (key === '-C' || key === '--chdir')) result.cwd = value ?? null;
    if (program === 'sudo' && (key === '-D' || key === '--chdir')) result.cwd = value ?? null;
    if (program === 'sudo' && (key === '-v' || key === '-l' || key === '-k' || key === '-K')) result.lookupOnly = key === '-l';
    if (program === 'command' && (key === '-v' || key === '-V')) result.lookupOnly = true;
    if (program === 'watch' && (key === '-x' || key === '--exec')) replace = 'exec';
    if (program === 'xargs' && (key === '-I' || key === '--replace')) replace = value ?? undefined;
    if (program === 'xargs' && key.startsWith('-i')) replace = name.length > 2 ? name.slice(2) : '{}';
    if (program === 'xargs' && (key === '-a' || key === '--arg-file')) {
      result.unknownTarget = true;
      result.argFile = value ?? null;
    }
    if (program === 'xargs' && (name === '--null' || (/^-[0rtpxo]+$/.test(name) && name.includes('0')))) result.nulSeparated = true;
  }
  // positional prefixes of particular wrappers
  if (program === 'timeout' && i < words.length) result.own.push(words[i++] as Word); // the duration
  if (program === 'env' || program === 'sudo') {
    for (; i < words.length; i++) {
      const w = words[i];
      if (typeof w !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) break;
      result.assigns.push(w.slice(0, w.indexOf('=')));
    }
  }
  const rest = words.slice(i);
  if (result.lookupOnly) return result;
  if (program === 'env' && split !== undefined) {
    result.innerScript = split === null || rest.some((w) => w === null) ? null : [split, ...rest.map((w) => shellQuote(w as string))].join(' ');
    return result;
  }
  if (program === 'env') result.dumpsEnv = rest.length === 0;
  if (program === 'watch' && replace !== 'exec') {
    result.innerScript = rest.some((w) => w === null) ? null : rest.join(' ');
    return result;
  }
  if (program === 'xargs') {
    result.unknownTarget = true;
    const cmd = rest.length > 0 ? rest : ['echo'];
    result.xargsCommand = cmd;
    if (replace !== undefined) result.replace = replace;
    result.inner = replace !== undefined ? cmd.map((w) => (w !== null && w.includes(replace as string) ? null : w)) : [...cmd, null];
    return result;
  }
  if (program === 'parallel') return parallel(rest, result);
  if (program === 'dotenv' && rest[0] === '--') rest.shift();
  result.inner = rest;
  return result;
}

function parallel(rest: Word[], result: Unwrapped): Unwrapped {
  const sep = rest.findIndex((w) => w === ':::' || w === '::::' || w === ':::+' || w === '::::+');
  const cmd = sep >= 0 ? rest.slice(0, sep) : rest;
  const inputs = sep >= 0 ? rest.slice(sep + 1).filter((w) => w === null || !w.startsWith(':::')) : [null];
  if (sep < 0 || rest[sep]?.startsWith('::::')) result.unknownTarget = true;
  const known = inputs.every((w) => w !== null) && !result.unknownTarget;
  if (cmd.length === 1 && typeof cmd[0] === 'string' && /\s/.test(cmd[0])) {
    const text = cmd[0];
    // one job per input: the template with {} filled in, or the input appended
    result.innerScript = !known ? null : inputs.map((w) => (text.includes('{}') ? text.split('{}').join(shellQuote(w as string)) : `${text} ${shellQuote(w as string)}`)).join('\n');
    return result;
  }
  const hasSlot = cmd.some((w) => w?.includes('{}'));
  result.inner = hasSlot ? cmd.flatMap((w) => (w?.includes('{}') ? (known ? inputs : [null]) : [w])) : [...cmd, ...inputs];
  return result;
}

/** `find`: starting points are its paths; `-exec`/`-execdir`/`-ok` run commands on what it finds; `-delete` deletes. */
function find(run: Runner, inv: Invocation): Stdin {
  const { words, env } = inv;
  const starts: Word[] = [];
  let i = 0;
  // global options come before the starting points: -H -L -P, -D debugopts, -Olevel
  while (i < words.length && typeof words[i] === 'string' && /^-(H|L|P|D|O\d*)$/.test(words[i] as string)) i += words[i] === '-D' ? 2 : 1;
  while (i < words.length && words[i] !== null && !/^[-(!]/.test(words[i] as string)) starts.push(words[i++] as Word);
  if (i < words.length && words[i] === null) starts.push(words[i++] as Word);
  const flags: string[] = [];
  const options: Record<string, Word> = {};
  const execs: Word[][] = [];
  const VALUED = /^-(i?name|i?path|i?wholename|i?regex|type|xtype|maxdepth|mindepth|[acm](min|time)|size|user|group|uid|gid|perm|newer\w*|printf|fprint|fprint0|fprintf|fls|lname|ilname|inum|links|samefile|used|context|regextype|files0-from)$/;
  let unknownExpression = false;
  for (; i < words.length; i++) {
    const w = words[i] as Word;
    if (w === null) {
      unknownExpression = true; // could be -delete or -exec
      continue;
    }
    if (/^(-o|-or|!|-not|\(|\))$/.test(w)) flags.push('operator');
    if (/^-(exec|execdir|ok|okdir)$/.test(w)) {
      const cmd: Word[] = [];
      for (i++; i < words.length && words[i] !== ';' && words[i] !== '+'; i++) cmd.push(words[i] as Word);
      if (!flags.includes(w.slice(1))) flags.push(w.slice(1));
      execs.push(cmd);
      continue;
    }
    if (VALUED.test(w)) {
      options[w.slice(1)] = (words[i + 1] ?? null) as Word;
      if (/^-(fprint0?|fprintf|fls)$/.test(w)) run.emit({ kind: 'file_write', path: resolvePath((words[i + 1] ?? null) as Word, env.cwd, run.ctx.home), origin: join(`the file \`${w}\` writes`, env.where), tags: [] });
      i++;
      continue;
    }
    if (w.startsWith('-') && w.length > 1) flags.push(w.slice(1));
  }
  if (starts.length === 0) starts.push('.');
  // with -o, ! or parentheses, -name no longer narrows what the actions touch
  if (flags.includes('operator')) { delete options.name; delete options.iname; }
  if (unknownExpression) inv.tags.push('unknown-target');
  // what `{}` stands for: a file under the single starting point, named like -name says
  const start = starts.length === 1 ? resolvePath(starts[0] as Word, env.cwd, run.ctx.home) : null;
  const name = typeof options.name === 'string' ? options.name : typeof options.iname === 'string' ? options.iname : '*';
  const found: Word = start === null || name.includes('/') ? null : `${start === '/' ? '' : start}/**/${name}`;
  run.emit(shellPart({ program: 'find', flags, options, args: starts, assigns: inv.assigns, expands: inv.expands, tags: inv.tags, env, text: inv.text, ctx: run.ctx }));
  if (flags.includes('delete')) {
    for (const s of starts) {
      const base = resolvePath(s, env.cwd, run.ctx.home);
      const path = base === null ? null : `${base === '/' ? '' : base}/**/${name}`;
      run.emit({ kind: 'file_write', path, origin: join(`the files \`${clip(inv.text)}\` deletes`, env.where), tags: path === null ? ['unknown-target'] : ['glob'] });
    }
  }
  for (const raw of execs) {
    const cmd = raw.map((c) => (c === '{}' ? found : c !== null && c.includes('{}') ? null : c));
    if (cmd.length === 0) run.fail(`\`find -exec\` with no command in \`${clip(inv.text)}\``);
    const inner = run.nested({ ...env }, `the command \`find -exec\` runs on each file found`);
    run.simple(cmd, inner, null, { text: raw.map((w) => w ?? '$?').join(' '), assigns: [], tags: found === null ? ['unknown-target'] : [], expands: inv.expands });
  }
  // with no action but printing, find lists paths that all match `found`
  const prints = execs.length === 0 && !flags.includes('delete') && !flags.some((f) => /^(fprint0?|fprintf|printf|fls|ls)$/.test(f));
  return prints && found !== null ? { unknown: `the paths \`${clip(inv.text)}\` finds`, paths: found } : { unknown: `the output of \`${clip(inv.text)}\`` };
}

/** Hands the SQL a client runs to the SQL analysis; returns the SQL file it runs, if any. */
function sqlClient(run: Runner, inv: Invocation, parsed: ParsedArgv, tags: PartTag[]): Word | undefined {
  let script: Word | undefined;
  const { program, env, stdin } = inv;
  const { options, args } = parsed;
  const where = (how: string) => `the SQL of \`${program} ${how}\``;
  const texts: { text: Word; how: string }[] = [];
  for (const t of program === 'psql' ? parsed.values.command ?? [] : []) texts.push({ text: t, how: '-c' });
  for (const t of program === 'mysql' || program === 'mariadb' ? parsed.values.execute ?? [] : []) texts.push({ text: t, how: '-e' });
  if (program === 'sqlite3' && typeof options.init === 'string') {
    tags.push('script-file');
    script = resolvePath(options.init, env.cwd, run.ctx.home);
  }
  if (program === 'sqlite3') {
    for (const a of parsed.values.cmd ?? []) texts.push({ text: a, how: '-cmd' });
    for (const a of args.slice(1)) texts.push({ text: a, how: 'DB SQL' });
  }
  if (program === 'psql' && 'file' in options) {
    tags.push('script-file');
    script = resolvePath(options.file as Word, env.cwd, run.ctx.home);
    run.emit({ kind: 'file_read', path: resolvePath(options.file as Word, env.cwd, run.ctx.home), origin: join(`the SQL file of \`${program} -f\``, env.where), tags: [] });
  }
  if (texts.length === 0 && stdin !== null) texts.push({ text: 'text' in stdin ? stdin.text : null, how: '< input' });
  for (const { text, how } of texts) {
    if (text === null) { tags.push(how === '< input' ? 'stdin-code' : 'inline-code'); continue; }
    if (program === 'sqlite3' && /^\s*\./m.test(text)) {
      // dot-commands, on any line: read-only ones are fine, .shell/.system run shell, the rest ask
      const sqlLines: string[] = [];
      for (const line of text.split('\n')) {
        const dot = /^\s*\.(\w+)\s*(.*)$/.exec(line);
        if (dot === null) { sqlLines.push(line); continue; }
        if (dot[1] === 'shell' || dot[1] === 'system') run.script(dot[2] as string, run.nested({ ...env }, `the shell command of sqlite3's \`.${dot[1]}\``), null);
        else if (!/^(headers|mode|tables|schema|indexes|indices|databases|dump|width|nullvalue|separator|timer|changes|echo|bail|quit|exit|help|show|stats|eqp|explain|print|prompt|fullschema|dbinfo|lint)$/.test(dot[1] as string)) tags.push('inline-code');
      }
      const rest = sqlLines.join('\n');
      if (rest.trim() !== '') run.sql(rest, env, where(how));
      continue;
    }
    if ((program === 'mysql' || program === 'mariadb') && /--(?![\s-])|#|\/\*!/.test(text)) tags.push('inline-code'); // MySQL reads these comments differently
    const meta = program === 'psql' ? psqlMeta(run, inv, text, tags) : { sql: text };
    if (meta.script !== undefined) script = meta.script;
    if (meta.sql.trim() !== '') run.sql(meta.sql, env, where(how), program === 'mysql' || program === 'mariadb');
  }
  return script;
}

/**
 * The glob every path a listing command prints matches, or null: `git ls-files` and
 * `git diff --name-only` list the repository (the working directory), `rg -l`, `rg --files`,
 * `grep -rl` and `fd` what they search.
 */
function listedPaths(program: string, parsed: ParsedArgv, cwd: string | null): string | null {
  if (cwd === null) return null;
  const { subcommand, args, flags } = parsed;
  const under = (dir: string, name = '*') => `${dir === '/' ? '' : dir}/**/${name}`;
  if (program === 'git' && (subcommand === 'ls-files' || (subcommand === 'diff' && (flags.includes('name-only') || flags.includes('name-status'))))) {
    const pattern = subcommand === 'ls-files' && args.length === 1 && typeof args[0] === 'string' && !args[0].includes('/') ? args[0] : '*';
    return args.length <= 1 ? under(cwd, pattern) : null;
  }
  const dir = (w: Word | undefined) => (w === undefined ? cwd : w === null ? null : resolvePath(w, cwd, '/nonexistent-home'));
  if ((program === 'rg' && (flags.includes('files-with-matches') || flags.includes('files'))) || ((program === 'grep' || program === 'egrep') && flags.includes('files-with-matches') && flags.includes('recursive'))) {
    const dirs = program === 'rg' && flags.includes('files') ? args : args.slice(1);
    const d = dir(dirs[0]);
    return dirs.length <= 1 && d !== null ? under(d) : null;
  }
  if (program === 'fd' || program === 'fdfind') {
    const d = dir(args[1]);
    return args.length <= 2 && d !== null ? under(d) : null;
  }
  return null;
}

/** psql meta-commands that only describe, format or set client variables. */
const PSQL_READ_META = /^\\(d\S*|l\+?|list|x|timing|pset|conninfo|encoding|echo|qecho|set|unset|q|quit|\?|h|help|sf\+?|sv\+?|z|c|connect|lo_list|a|C|f|H|T|t|r|p|print|errverbose|warn)(\s|$)/;

/**
 * Splits psql input into SQL and backslash meta-commands (whole lines): `\! cmd` and `\o |cmd`
 * run shell commands (judged as shell), `\i file` runs SQL Gatehouse cannot see, `\o file` and
 * `\w file` write files, describe and format commands do nothing to judge; any other is unknown code.
 * @returns the SQL lines, for the SQL analysis.
 */
function psqlMeta(run: Runner, inv: Invocation, text: string, tags: PartTag[]): { sql: string; script?: Word } {
  const sql: string[] = [];
  let script: Word | undefined;
  for (const line of text.split('\n')) {
    const meta = line.trim();
    if (!meta.startsWith('\\')) {
      sql.push(line);
      continue;
    }
    const shell = /^\\(!|[ogw]\s*\|)\s*(.*)$/.exec(meta);
    const file = /^\\(i|ir|include|include_relative|o|out|w|write|g)\s+(\S+)/.exec(meta);
    if (shell) run.script(shell[2] ?? '', run.nested({ ...inv.env }, `the shell command of psql's \`${clip(meta, 20)}\``), null);
    else if (file) {
      const reads = /^i/.test(file[1] ?? '');
      const path = resolvePath(file[2] as string, inv.env.cwd, run.ctx.home);
      if (reads) {
        tags.push('script-file');
        script = path;
      }
      run.emit({ kind: reads ? 'file_read' : 'file_write', path, origin: join(`the file of psql's \`${clip(meta, 30)}\``, inv.env.where), tags: [] });
    } else if (!PSQL_READ_META.test(meta)) tags.push('inline-code');
    sql.push('');
  }
  return { sql: sql.join('\n'), script };
}

/**
 * Programs whose own little languages or options can run commands: an awk program with
 * `system()`, a pipe or an output redirect; GNU sed's `e` and `w` commands; tar's
 * `--to-command` and `--checkpoint-action=exec`, a compressor program; rsync's `-e`.
 * Their program text is not bash, so Gatehouse does not parse it: it asks.
 */
function runsEmbeddedCode(program: string, parsed: ParsedArgv, words: Word[]): boolean {
  const { args, options } = parsed;
  const text = (w: Word | undefined) => (w === undefined ? '' : w === null ? null : w);
  if (program === 'awk' || program === 'gawk' || program === 'mawk') {
    if ('file' in options || words.some((w) => w === null || /^(--source|--include|--load|-e|-i|-l)(=|$)/.test(w))) return true;
    const code = text(args[0]);
    return code === null || /\bsystem\s*\(|\|\s*(&|getline|")|\bprint[f]?\b[^;}]*>|getline\s*<|\|&/.test(code);
  }
  if (program === 'sed') {
    const scripts = 'expression' in options ? [text(options.expression)] : [text(args[0])];
    if ('file' in options) return true;
    return scripts.some((c) => c === null || /(^|[;\n{}]\s*)[\d,$/!]*\s*[ew](\s|$)|s(.)(?:(?!\3).)*\3(?:(?!\3).)*\3[gpiImM\d]*[ew]/.test(c));
  }
  if (program === 'tar') return ['to-command', 'checkpoint-action', 'use-compress-program', 'I', 'info-script', 'new-volume-script', 'F'].some((o) => o in options || parsed.flags.includes(o));
  if (program === 'rsync') return 'rsh' in options;
  if (program === 'zip') return words.some((w) => w === '-TT' || w?.startsWith('--unzip-command'));
  return false;
}

/** Git subcommands that print file contents, from the tree or from history. */
const GIT_READERS = new Set(['show', 'log', 'diff', 'blame', 'annotate', 'cat-file', 'grep', 'whatchanged', 'format-patch', 'archive']);

function gitFacts(parsed: ParsedArgv, tags: PartTag[], file: FileEmitter): void {
  if (parsed.options.output !== undefined) file('file_write', parsed.options.output, 'the file git writes');
  if (parsed.subcommand !== null && GIT_READERS.has(parsed.subcommand)) {
    const operands = parsed.subcommand === 'grep' && !('e' in parsed.options) ? parsed.args.slice(1) : parsed.args;
    for (const a of operands) {
      const blob = a === null ? null : /^[^:]*:(.+)$/.exec(a);
      if (blob) file('file_read', blob[1] as string, 'a file git prints from history');
      else if (a !== null && !a.includes(':')) file('file_read', a, 'a file git prints');
    }
  }
  if (parsed.subcommand === 'push') {
    for (const a of parsed.args) {
      if (a?.startsWith('+')) addFlag(parsed, 'force');
      if (a?.startsWith(':')) addFlag(parsed, 'delete');
    }
  }
  // only settings known to be inert may be set for one command; anything else could run code
  const inert = /^(user\.(name|email)|color\.[\w.]+|core\.(quotepath|autocrlf|safecrlf|abbrev)|init\.defaultbranch|advice\.[\w.]+|log\.\w+|diff\.(renames|noprefix|mnemonicprefix|algorithm)|commit\.gpgsign|tag\.gpgsign|safe\.directory|push\.autosetupremote|pull\.rebase|merge\.conflictstyle|i18n\.\w+|gc\.auto)=/i;
  for (const v of parsed.values.c ?? []) if (v === null || !inert.test(v)) tags.push('inline-code');
  if ('config-env' in parsed.options) tags.push('inline-code');
}

function addFlag(parsed: ParsedArgv, flag: string): void {
  if (!parsed.flags.includes(flag)) parsed.flags.push(flag);
}

type FileEmitter = (kind: 'file_read' | 'file_write', w: Word, what: string) => void;

/** Copies: local sources are read; a local destination is written (with each source's name under a directory given by `-t`). */
function copyFiles(program: string, parsed: ParsedArgv, file: FileEmitter): void {
  const { args, options } = parsed;
  const remote = (w: Word) => w !== null && /^[^/]*:/.test(w) && !w.startsWith('./') && !w.startsWith('/');
  const target = options['target-directory'];
  const sources = target !== undefined ? args : args.slice(0, -1);
  const dest = target !== undefined ? target : args[args.length - 1];
  for (const s of sources) if (!remote(s)) file('file_read', s, program === 'ln' ? 'a link source' : 'a file copied');
  if (dest !== undefined && !remote(dest)) file('file_write', dest, 'the destination');
  if (target !== undefined && target !== null) {
    for (const s of sources) if (s !== null && !remote(s)) file('file_write', `${target}/${s.replace(/\/+$/, '').split('/').pop()}`, 'the destination');
  }
}

/** Files sed's `w FILE` commands and `s///w FILE` flags write. */
function sedWrites(scripts: Word[]): Word[] {
  const out: Word[] = [];
  for (const script of scripts) {
    if (script === null) continue;
    for (const m of script.matchAll(/(?:^|[;\n{}])\s*[\d,$/!]*\s*w\s+([^;\n}]+)/g)) out.push((m[1] as string).trim());
    for (const m of script.matchAll(/s(.)(?:(?!\1).)*\1(?:(?!\1).)*\1[gpiImM\d]*w\s+([^;\n}]+)/g)) out.push((m[2] as string).trim());
  }
  return out;
}

/** gh sends files: `gist create FILES`, `release upload TAG FILES`, `--body-file F`, `api -F k=@F`, `--input F`. */
function ghFiles(parsed: ParsedArgv, file: FileEmitter): void {
  const { subcommand, args, options, values } = parsed;
  if (subcommand === 'gist' && (args[0] === 'create' || args[0] === 'edit')) args.slice(1).forEach((a) => file('file_read', a, 'a file gh uploads'));
  if (subcommand === 'release' && (args[0] === 'upload' || args[0] === 'create')) args.slice(2).forEach((a) => file('file_read', a, 'a file gh uploads'));
  if (options['body-file'] !== undefined) file('file_read', options['body-file'], 'a file gh posts');
  if (options.input !== undefined) file('file_read', options.input, 'a file gh posts');
  for (const v of [...(values.field ?? []), ...(values['raw-field'] ?? [])]) {
    const at = v === null ? null : /^[^=]*=@(.+)$/.exec(v);
    if (at) file('file_read', at[1] as string, 'a file gh posts');
  }
  if ((subcommand === 'issue' || subcommand === 'pr') && options.field !== undefined && !String(options.field).includes('=')) file('file_read', options.field, 'a file gh posts');
}

function web(run: Runner, inv: Invocation, parsed: ParsedArgv, file: FileEmitter): void {
  const { program, env } = inv;
  const { options, args, flags } = parsed;
  let method = 'GET';
  let urls: Word[] = args;
  if (program === 'curl') {
    const uploads = ['data', 'data-binary', 'data-ascii', 'data-urlencode', 'data-raw', 'json', 'form', 'form-string'];
    // without -g, curl expands {a,b} and [1-9] in URLs: the host is not what it looks like
    if (!flags.includes('globoff')) urls = urls.map((u) => (u !== null && /[{}[\]]/.test(u.replace(/^[a-z]+:\/\/\[[0-9a-f:.]+\]/i, '')) ? null : u));
    for (const o of [...uploads, 'header']) {
      for (const v of parsed.values[o] ?? []) {
        if (v === null) continue;
        const at = o === 'form' ? v.match(/=[@<](.*?)(;|$)/)?.[1] : o === 'data-urlencode' ? v.match(/@(.*)$/)?.[1] : v.startsWith('@') ? v.slice(1) : undefined;
        if (at !== undefined && at !== '-') file('file_read', at, o === 'header' ? 'a header file sent' : 'a file uploaded');
      }
    }
    if (flags.includes('remote-name') || 'output-dir' in options) {
      for (const u of args) file('file_write', `${options['output-dir'] ?? '.'}/${urlBasename(u)}`, 'the file downloaded');
    }
    if (options['upload-file'] !== undefined) file('file_read', options['upload-file'], 'a file uploaded');
    if (options.config !== undefined) file('file_read', options.config, 'the config file');
    if (options.config !== undefined || inv.env.vars?.has('CURL_HOME')) run.emit({ ...shellPart({ program: 'curl', tags: ['inline-code'], env, text: inv.text, ctx: run.ctx }), origin: join('the options `curl -K` reads from a file', env.where) });
    if (options.output !== undefined) file('file_write', options.output, 'the output file');
    method = typeof options.request === 'string' ? options.request.toUpperCase()
      : options.request === null ? '?'
      : uploads.some((o) => o in options) ? 'POST'
      : 'upload-file' in options ? 'PUT'
      : flags.includes('head') ? 'HEAD' : 'GET';
    if (flags.includes('get')) method = 'GET';
    if (options.url !== undefined) urls = [...urls, options.url];
  } else if (program === 'wget') {
    if ('execute' in options) run.emit({ ...shellPart({ program: 'wget', tags: ['inline-code'], env, text: inv.text, ctx: run.ctx }), origin: join('the settings `wget -e` applies', env.where) });
    for (const o of ['post-file', 'body-file', 'input-file']) if (options[o] !== undefined) file('file_read', options[o] as Word, 'a file sent');
    if (options['output-document'] !== undefined) {
      if (options['output-document'] !== '-') file('file_write', options['output-document'], 'the output file');
    } else for (const u of args) file('file_write', `${options['directory-prefix'] ?? '.'}/${urlBasename(u)}`, 'the file downloaded');
    method = typeof options.method === 'string' ? options.method.toUpperCase() : ['post-data', 'post-file', 'body-data', 'body-file'].some((o) => o in options) ? 'POST' : 'GET';
  } else {
    // httpie and xh: [METHOD] URL [ITEM…]; data items make it a POST
    const first = args[0];
    if (typeof first === 'string' && /^[A-Z]+$/.test(first)) { method = first; urls = args.slice(1, 2); }
    else { urls = args.slice(0, 1); if (args.slice(1).some((a) => a === null || /[^:]=|:=|@/.test(a))) method = 'POST'; }
    for (const item of args.slice(1)) if (item !== null && /^[^=@:]+@/.test(item)) file('file_read', item.slice(item.indexOf('@') + 1), 'a file sent');
  }
  for (const url of urls) run.emit(httpPart(method, url, join(`the request of \`${clip(inv.text)}\``, env.where), true));
}

function urlBasename(url: Word): string {
  if (url === null) return '*';
  const path = url.replace(/[?#].*$/, '').replace(/^[a-z]+:\/\/[^/]*/i, '');
  return path.split('/').filter(Boolean).pop() ?? 'index.html';
}

/** `docker exec [OPTIONS] CONTAINER CMD…` and `kubectl exec POD -- CMD…` run CMD in a container: judge it too. */
function containerCommand(run: Runner, inv: Invocation, words: Word[]): void {
  let cmd: Word[];
  const dashes = words.indexOf('--');
  if (inv.program === 'kubectl') cmd = dashes >= 0 ? words.slice(dashes + 1) : [];
  else {
    const valued = new Set(['-e', '--env', '-u', '--user', '-w', '--workdir', '--env-file', '--detach-keys']);
    let i = words.indexOf('exec') + 1;
    for (; i < words.length; i++) {
      const w = words[i];
      if (typeof w !== 'string' || !w.startsWith('-')) break;
      if (valued.has(w)) i++;
    }
    cmd = words.slice(i + 1); // past the container name
  }
  if (cmd.length === 0) return;
  run.simple(cmd, run.nested({ ...inv.env, cwd: null }, `the command \`${inv.program} exec\` runs in the container`), null, { text: cmd.map((w) => w ?? '$?').join(' '), assigns: [], tags: [] });
}

/** `ssh HOST COMMAND…` runs COMMAND through the remote user's shell: judge it as shell text. */
function remoteCommand(run: Runner, inv: Invocation, parsed: ParsedArgv): void {
  const cmd = parsed.args.slice(1);
  if (cmd.length === 0) return;
  if (cmd.some((w) => w === null)) run.fail(`the remote command of \`${clip(inv.text)}\` comes from an expansion Gatehouse cannot see`);
  run.script(cmd.join(' '), run.nested({ ...inv.env, cwd: null }, 'the remote command of `ssh`'), null);
}

function decodeBase64(text: string): string | null {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(compact, 'base64'));
  } catch {
    return null;
  }
}
