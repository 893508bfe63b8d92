import type { Word } from '../action.js';
import type { ParsedArgv } from './argv.js';

/**
 * Programs that run a command given to them: as argv (`uv run CMD…`, `bundle exec CMD…`,
 * `docker compose exec SERVICE CMD…`) or as shell text (`git submodule foreach 'CMD'`,
 * `su -c 'CMD'`, `ssh -o ProxyCommand='CMD'`). The wrapped command is judged like any other.
 * Sources: each program's manual page.
 */

export type Inner = { argv: Word[]; where: string } | { script: Word; where: string };

interface ArgvRunner {
  /** Options of the runner (after its subcommand) that take a value. */
  values: string[];
  /** Positional operands between the options and the command (a service, an image, a directory). */
  operands: number;
}

/** `program subcommand` (or `program` alone) → how to find the command it runs in the words after the subcommand. */
const ARGV_RUNNERS: Record<string, ArgvRunner> = {
  'npm exec': { values: ['--package', '-p', '-w', '--workspace'], operands: 0 },
  'npm x': { values: ['--package', '-p'], operands: 0 },
  'pnpm exec': { values: ['--filter', '-F'], operands: 0 },
  'pnpm dlx': { values: ['--package'], operands: 0 },
  'yarn exec': { values: [], operands: 0 },
  'yarn dlx': { values: ['--package', '-p'], operands: 0 },
  'bun x': { values: [], operands: 0 },
  'uv run': { values: ['--with', '--python', '-p', '--directory', '--project', '--package', '--extra', '--group', '--env-file', '--index', '--index-url'], operands: 0 },
  'uv tool': { values: ['--with', '--python', '--from'], operands: 1 }, // uv tool run CMD
  'poetry run': { values: ['-C', '--directory', '-P', '--project'], operands: 0 },
  'pipenv run': { values: [], operands: 0 },
  'pdm run': { values: ['-p', '--project'], operands: 0 },
  'hatch run': { values: [], operands: 0 },
  'bundle exec': { values: ['--gemfile'], operands: 0 },
  'mise exec': { values: ['-C', '--cd'], operands: 0 },
  'mise x': { values: ['-C', '--cd'], operands: 0 },
  'asdf exec': { values: [], operands: 0 },
  'conda run': { values: ['-n', '--name', '-p', '--prefix', '--cwd'], operands: 0 },
  'direnv exec': { values: [], operands: 1 },
  'git bisect': { values: [], operands: 1 }, // git bisect run CMD
  'docker compose': { values: ['-e', '--env', '-u', '--user', '-w', '--workdir', '--index', '-p', '--project-name', '-f', '--file', '--entrypoint', '-v', '--volume', '--name', '-l', '--label'], operands: 2 }, // compose exec|run SERVICE CMD
  'docker run': { values: DOCKER_RUN_VALUES(), operands: 1 },
  'podman run': { values: DOCKER_RUN_VALUES(), operands: 1 },
  'docker create': { values: DOCKER_RUN_VALUES(), operands: 1 },
};

function DOCKER_RUN_VALUES(): string[] {
  return ['-e', '--env', '--env-file', '-v', '--volume', '-p', '--publish', '--name', '-w', '--workdir', '-u', '--user', '--network',
    '--net', '--entrypoint', '-l', '--label', '--mount', '--cpus', '-m', '--memory', '--platform', '--restart', '--add-host', '--device',
    '--cap-add', '--cap-drop', '--gpus', '-h', '--hostname', '--pid', '--ipc', '--tmpfs', '--log-driver', '--log-opt', '--dns', '--shm-size',
    '--ulimit', '--security-opt', '--expose', '--link', '--stop-signal', '--health-cmd', '--user', '--group-add', '-c', '--cpu-shares'];
}

/** Options whose value is shell text, per `program` or `program subcommand`. */
const SCRIPT_OPTIONS: Record<string, string[]> = {
  'git rebase': ['-x', '--exec'],
  'git difftool': ['-x', '--extcmd'],
  'git mergetool': ['--tool-cmd'],
  'git fetch': ['--upload-pack'],
  'git pull': ['--upload-pack'],
  'git clone': ['--upload-pack', '-u'],
  'git ls-remote': ['--upload-pack'],
  'git push': ['--receive-pack', '--exec'],
  su: ['-c', '--command', '-s', '--shell'],
  runuser: ['-c', '--command'],
  flock: ['-c', '--command'],
  script: ['-c', '--command'],
  'gcloud compute': ['--command'],
  'npm exec': ['-c', '--call'],
  npx: ['-c', '--call'],
};

/**
 * The commands a program runs on its own behalf, found in its words.
 * @param program normalized program name.
 * @param words   the words after the program name.
 * @param parsed  the same words parsed by the program's option spec.
 */
export function commandsRun(program: string, words: Word[], parsed: ParsedArgv): Inner[] {
  const inner: Inner[] = [];
  const sub = parsed.subcommand;
  const key = sub !== null ? `${program} ${sub}` : program;

  for (const k of [key, program]) {
    for (const opt of SCRIPT_OPTIONS[k] ?? []) {
      const v = optionValue(words, opt);
      if (v !== undefined && !(k === 'su' && (opt === '-s' || opt === '--shell'))) inner.push({ script: v, where: `the command \`${program} ${opt}\` runs` });
    }
  }
  // ssh -o ProxyCommand=…, -o LocalCommand=…
  if (program === 'ssh' || program === 'scp' || program === 'sftp' || program === 'rsync') {
    for (let i = 0; i < words.length; i++) {
      const o = words[i] === '-o' ? words[i + 1] : typeof words[i] === 'string' && (words[i] as string).startsWith('-o') ? (words[i] as string).slice(2) : undefined;
      if (typeof o === 'string') {
        const m = /^(ProxyCommand|LocalCommand|KnownHostsCommand|RemoteCommand)\s*[= ]\s*(.*)$/i.exec(o);
        if (m) inner.push({ script: m[2] as string, where: `the ${m[1]} of \`${program}\`` });
      }
    }
  }
  if (program === 'rsync') {
    const rsh = optionValue(words, '-e') ?? optionValue(words, '--rsh');
    if (rsh !== undefined) inner.push({ script: rsh, where: 'the remote shell of `rsync -e`' });
  }
  if (program === 'git' && sub === 'submodule' && parsed.args[0] === 'foreach') {
    const cmd = parsed.args.slice(1);
    inner.push({ script: cmd.some((w) => w === null) ? null : cmd.join(' '), where: 'the command `git submodule foreach` runs' });
  }
  if (program === 'gdb' || program === 'lldb' || program === 'cgdb') {
    const at = words.indexOf('--args');
    if (at >= 0 && words.length > at + 1) inner.push({ argv: words.slice(at + 1), where: `the program \`${program} --args\` runs` });
  }
  // runners given a shell command as an option value
  for (const [prog, opts] of [['nodemon', ['--exec', '-x']], ['cargo-watch', ['-s', '--shell', '-x', '--exec']], ['gdb', ['-ex', '--eval-command']], ['watchexec', ['--shell']], ['entr', []]] as const) {
    if (program !== prog) continue;
    for (const opt of opts) {
      for (let i = 0; i < words.length; i++) {
        const w = words[i];
        if (w === opt) inner.push({ script: (words[i + 1] ?? null) as Word, where: `the command \`${program} ${opt}\` runs` });
        else if (typeof w === 'string' && w.startsWith(`${opt}=`)) inner.push({ script: w.slice(opt.length + 1), where: `the command \`${program} ${opt}\` runs` });
      }
    }
  }
  if (program === 'gdb') for (const w of words) if (typeof w === 'string' && /^shell\s|^!/.test(w)) inner.push({ script: w.replace(/^shell\s+|^!/, ''), where: 'the shell command of gdb' });
  if ((program === 'watchexec' || program === 'tox' || program === 'nox') && words.includes('--')) {
    const argv = words.slice(words.indexOf('--') + 1);
    if (argv.length > 0) inner.push({ argv, where: `the command \`${program}\` runs` });
  }
  if (program === 'hyperfine' || program === 'time-it') {
    for (const w of parsed.args) inner.push({ script: w, where: `a command \`${program}\` benchmarks` });
    for (const w of parsed.values.prepare ?? []) inner.push({ script: w, where: `the preparation \`${program}\` runs` });
  }
  if (program === 'perf' && (sub === 'stat' || sub === 'record' || sub === 'trace')) {
    const argv = afterOptions(words.slice(words.indexOf(sub) + 1), ['-e', '--event', '-o', '--output', '-p', '--pid', '-c', '-F', '-r'], 0);
    if (argv.length > 0) inner.push({ argv, where: `the command \`perf ${sub}\` runs` });
  }
  const runner = ARGV_RUNNERS[key];
  if (runner !== undefined && sub !== null && !inner.some((i) => i.where.includes(' -c`') || i.where.includes(' --call`'))) {
    const start = words.indexOf(sub) + 1;
    let operands = runner.operands;
    if (key === 'git bisect' && parsed.args[0] !== 'run') operands = -1;
    if (key === 'uv tool' && parsed.args[0] !== 'run') operands = -1;
    if (key === 'docker compose' && !['exec', 'run'].includes(String(parsed.args[0]))) operands = -1;
    if (operands >= 0) {
      const argv = afterOptions(words.slice(start), runner.values, operands);
      if (argv.length > 0) inner.push({ argv, where: `the command \`${key}\` runs` });
    }
  }
  return inner;
}

/** The value of `opt` in `--opt=V`, `-oV` (short) or `opt V` form; undefined when absent. */
function optionValue(words: Word[], opt: string): Word | undefined {
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as Word;
    if (w === null) continue;
    if (w === opt) return (words[i + 1] ?? null) as Word;
    if (opt.startsWith('--') && w.startsWith(opt + '=')) return w.slice(opt.length + 1);
    if (!opt.startsWith('--') && w.startsWith(opt) && w.length > opt.length && !w.startsWith('--')) return w.slice(opt.length);
  }
  return undefined;
}

/** Skips options (and the values of those in `values`), then `operands` positionals; the rest is argv. */
function afterOptions(words: Word[], values: string[], operands: number): Word[] {
  let i = 0;
  let left = operands;
  while (i < words.length) {
    const w = words[i];
    if (w === '--') return words.slice(i + 1 + left).filter(() => true);
    if (typeof w === 'string' && w.startsWith('-') && w.length > 1) {
      i += values.includes(w) ? 2 : 1;
      continue;
    }
    if (left > 0) {
      left--;
      i++;
      continue;
    }
    return words.slice(i);
  }
  return [];
}
