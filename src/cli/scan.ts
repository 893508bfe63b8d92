import { parseArgs } from 'node:util';
import { DEFAULT_MAX_FILE_SIZE, printable, scanEnvironment, scanFiles, type Finding, type Skipped } from '../credentials/scan.js';
import { EXIT, report, wholeNumber, type Io } from './common.js';

export const SCAN_HELP = `Usage:
  gatehouse scan [PATH…] [--env] [--gitignore] [--max-file-size BYTES] [--json]

Finds credentials an agent could pick up, in files and in the environment, and prints each as
\`path:line:col  kind  preview\`, then a summary. The preview never shows the secret: at most its
first 4 characters and its length (ghp_…(40 chars)).

  PATH…                  files and directories to scan (default: this directory, unless --env is
                         given alone). Directories are walked whole, hidden files and node_modules
                         included; .git directories are left out. Symbolic links met in the walk
                         are not followed (a PATH that is one is). Binary files (a NUL byte in the
                         first 8 KiB) and files over the size cap are skipped, and counted
  --env                  scan the environment variables too: every value, and any value of at least
                         8 characters under a secret-looking name (…_TOKEN, …_SECRET, …PASSWORD…,
                         …_API_KEY) is reported as kind env-name. Found at env:NAME
  --gitignore            leave out what .gitignore files exclude (nested ones too, and those of the
                         enclosing git work tree). Off by default: an agent can read ignored files
  --max-file-size BYTES  skip files larger than this (default ${DEFAULT_MAX_FILE_SIZE}, 2 MiB)
  --json                 print one JSON object: {"findings": [{"location", "line", "column",
                         "kind", "preview"}], "filesScanned", "skipped": [{"location", "reason"}]}

Exit status: 0 nothing found, 1 credentials found, 2 usage error (such as a PATH that does not
exist). Skipped files do not change it: the summary counts them, and names unreadable ones.
`;

/** The largest `--max-file-size`: 256 MiB (a file is read into one string). */
const MAX_FILE_SIZE_LIMIT = 256 * 1024 * 1024;
/** Milliseconds between progress lines on a terminal. */
const PROGRESS_EVERY = 2000;

/** `gatehouse scan`: exit status 0 nothing found, 1 credentials found, 2 usage error. */
export async function scanCommand(argv: string[], io: Io): Promise<number> {
  let json = false;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        env: { type: 'boolean' }, gitignore: { type: 'boolean' }, 'max-file-size': { type: 'string' },
        json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
    json = values.json === true;
    if (values.help) {
      io.out(SCAN_HELP);
      return 0;
    }
    const maxFileSize = wholeNumber('max-file-size', values['max-file-size'], DEFAULT_MAX_FILE_SIZE, 1, MAX_FILE_SIZE_LIMIT);
    const paths = positionals.length > 0 ? positionals : values.env ? [] : ['.'];
    let last = Date.now();
    const onProgress = process.stderr.isTTY
      ? (n: number) => {
          const now = Date.now();
          if (now - last < PROGRESS_EVERY) return;
          last = now;
          io.err(`scanned ${n} files…\n`);
        }
      : undefined;
    const files = await scanFiles(paths, { gitignore: values.gitignore === true, maxFileSize, onProgress });
    const env = values.env ? await scanEnvironment(process.env) : [];
    const findings = [...files.findings, ...env];
    if (json) io.out(JSON.stringify({ findings, filesScanned: files.filesScanned, skipped: files.skipped }) + '\n');
    else {
      for (const f of findings) io.out(findingText(f));
      for (const s of files.skipped) if (s.reason === 'unreadable') io.err(`gatehouse scan: could not read ${printable(s.location)} (${s.detail ?? 'unknown error'}): skipped\n`);
      io.out(summary(findings.length, files.filesScanned, paths.length > 0, values.env === true, files.skipped, maxFileSize));
    }
    return findings.length > 0 ? EXIT.failed : 0;
  } catch (err) {
    return report(io, err, 'scan', json);
  }
}

function findingText(f: Finding): string {
  const where = f.location.startsWith('env:') ? printable(f.location) : `${printable(f.location)}:${f.line}:${f.column}`;
  return `${where}  ${printable(f.kind)}  ${f.preview}\n`;
}

/** `2 credentials found in 120 files and the environment; skipped 2 binary, 1 over 2 MiB`. */
function summary(found: number, filesScanned: number, filesAsked: boolean, envAsked: boolean, skipped: readonly Skipped[], maxFileSize: number): string {
  const where = [filesAsked ? plural(filesScanned, 'file') : '', envAsked ? 'the environment' : ''].filter((w) => w !== '').join(' and ');
  let line = found === 0 ? `no credentials found in ${where}` : `${plural(found, 'credential')} found in ${where}`;
  if (skipped.length > 0) {
    const counts = (['binary', 'too-large', 'unreadable'] as const)
      .map((reason) => ({ reason, n: skipped.filter((s) => s.reason === reason).length }))
      .filter((c) => c.n > 0)
      .map((c) => `${c.n} ${c.reason === 'too-large' ? `over ${bytes(maxFileSize)}` : c.reason}`);
    line += `; skipped ${counts.join(', ')}`;
  }
  return line + '\n';
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function bytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}
