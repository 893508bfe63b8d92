import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { SandboxManager, type SandboxRuntimeConfig } from '@anthropic-ai/sandbox-runtime';
import { GatehouseError } from '../gatehouse-error.js';

/**
 * Commands Gatehouse runs for an agent, inside `@anthropic-ai/sandbox-runtime` (bubblewrap with
 * its own PID, user and network namespaces, seccomp, and a filtering proxy for the hosts allowed):
 * the file system is read-only except the workspace and a private temp directory, credentials'
 * homes are hidden, the network reaches only the allowed hosts, and the environment is exactly
 * the one given. On top of it, the limits the sandbox does not give:
 *
 * - processes: a `pids` cgroup per command (`pids.max`): a fork bomb stops at the cap;
 * - file size: `RLIMIT_FSIZE` (`prlimit --fsize`): a process writing past it gets SIGXFSZ;
 * - time and output: a wall-clock timeout and an output cap kill the whole tree (the process group
 *   of the outer bwrap; `--die-with-parent` then tears down its PID namespace), and the cgroup is
 *   swept until empty; `setpriv --pdeathsig` kills the sandbox if Gatehouse dies.
 *
 * Fail closed: a command runs only when its cgroup could be made. Total disk use and memory are
 * not capped here (see the README). Linux only; needs `bwrap`, `socat`, `rg`, `setpriv`, `prlimit`.
 */

export interface ExecLimits {
  /** Wall-clock milliseconds before the tree is killed. */
  timeoutMs: number;
  /** Bytes of stdout and stderr together; past it the tree is killed and the output cut. */
  maxOutputBytes: number;
  /** Bytes of any one file written (RLIMIT_FSIZE). */
  maxFileBytes: number;
  /** Processes at once in the command's tree (pids.max), the sandbox's own (about 6) included. */
  maxPids: number;
}

export interface ExecResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  killedFor: 'timeout' | 'output_limit' | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

const DEFAULT_LIMITS: ExecLimits = { timeoutMs: 30_000, maxOutputBytes: 1 << 20, maxFileBytes: 100 << 20, maxPids: 256 };
/** Hidden from every command (a hidden directory appears empty); the workspace is readable even when below one of them. */
const HIDDEN = ['/root', '/home', '/tmp', '/var/tmp', '/etc/shadow', '/etc/gshadow', '/etc/ssh', '/etc/sudoers', '/etc/sudoers.d'];
const PIDS_CGROUPS = ['/sys/fs/cgroup/pids/gatehouse', '/sys/fs/cgroup/gatehouse'];
/** sandbox-runtime's own helpers (seccomp) run inside the sandbox: its directory stays readable even when Gatehouse is installed below a hidden path. */
const RUNTIME_DIR = dirname(createRequire(import.meta.url).resolve('@anthropic-ai/sandbox-runtime/package.json'));

export class Sandbox {
  private cgroupRoot: string | null = null;
  // sandbox-runtime takes its built-in write protections (.bashrc, .git/hooks…) from process.cwd(): wraps run one at a time, there
  private wraps: Promise<unknown> = Promise.resolve();

  private constructor(private readonly hidden: string[]) {}

  /**
   * Starts the sandbox's network proxy for `allowedHosts` (one list per process).
   * @throws GatehouseError `sandbox_unavailable` when bubblewrap & co. are missing or no pids cgroup can be made.
   */
  static async start(allowedHosts: string[], hidden: string[] = []): Promise<Sandbox> {
    const deps = SandboxManager.checkDependencies();
    if (deps.errors.length > 0) throw new GatehouseError('sandbox_unavailable', `the sandbox cannot run here: ${deps.errors.join('; ')} (Debian: apt-get install bubblewrap socat ripgrep)`);
    const box = new Sandbox([...HIDDEN, ...hidden]);
    for (const root of PIDS_CGROUPS) {
      try {
        mkdirSync(root, { recursive: true });
        if (existsSync(`${root}/cgroup.procs`) && (existsSync(`${root}/pids.max`) || root.includes('/pids/'))) {
          box.cgroupRoot = root;
          break;
        }
      } catch {
        // not this hierarchy
      }
    }
    if (box.cgroupRoot === null) throw new GatehouseError('sandbox_unavailable', 'no pids cgroup could be made (cgroup v1 pids or a delegated v2 subtree): a command could fork without limit, so none runs');
    // empty cgroups a killed Gatehouse left behind go; a busy one (another instance's command) stays: rmdir refuses it
    for (const entry of readdirSync(box.cgroupRoot, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      try {
        rmdirSync(`${box.cgroupRoot}/${entry.name}`);
      } catch {
        // still has processes
      }
    }
    await SandboxManager.initialize({ network: { allowedDomains: allowedHosts, deniedDomains: [], strictAllowlist: true }, filesystem: { denyRead: [], allowWrite: [], denyWrite: [] } } satisfies SandboxRuntimeConfig);
    return box;
  }

  async stop(): Promise<void> {
    await SandboxManager.reset();
  }

  /**
   * Runs `command` (bash) in `cwd` with exactly `env`; `workspace` (a real path, no symbolic links)
   * is the one writable directory besides a private temp directory.
   * @throws GatehouseError `sandbox_unavailable` when the command's cgroup cannot be made (it did not run).
   */
  async exec(command: string, cwd: string, workspace: string, env: Record<string, string>, limits: Partial<ExecLimits> = {}): Promise<ExecResult> {
    const lim = { ...DEFAULT_LIMITS, ...limits };
    const dir = resolve(cwd);
    const id = randomUUID();
    const cg = `${this.cgroupRoot}/${id}`;
    const tmp = mkdtempSync('/tmp/gatehouse-exec-');
    let wrappedOk = false;
    try {
      // INVARIANT: sandbox-runtime's own protections (.git/hooks, .git/config, dotfiles) are taken from the directory it wraps in: always the workspace root; the command then moves to its cwd
      const wrapped = await this.wrap(workspace, `export TMPDIR='${tmp}'\ncd -- '${dir.replace(/'/g, `'\\''`)}' || exit 126\n${command}`, id, tmp);
      wrappedOk = true;
      try {
        mkdirSync(cg);
        writeFileSync(`${cg}/pids.max`, String(lim.maxPids));
      } catch (err) {
        throw new GatehouseError('sandbox_unavailable', `the command's pids cgroup could not be made (${(err as Error).message}); it did not run`);
      }
      try {
        return await run(wrapped, dir, env, lim, cg);
      } finally {
        for (let i = 0; i < 400 && pidsOf(cg).length > 0; i++) {
          for (const p of pidsOf(cg)) killQuietly(p);
          await new Promise((r) => setTimeout(r, 5));
        }
        try {
          rmdirSync(cg);
        } catch {
          // a process that would not die keeps its cgroup; it stays visible in the hierarchy
        }
      }
    } finally {
      // sandbox-runtime counts wraps: a wrap that threw has nothing to clean up
      if (wrappedOk) SandboxManager.cleanupAfterCommand();
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  private wrap(workspace: string, command: string, id: string, tmp: string): Promise<string> {
    const job = this.wraps.then(async () => {
      const saved = process.cwd();
      process.chdir(workspace);
      try {
        return await SandboxManager.wrapWithSandbox(command, 'bash', { filesystem: { denyRead: this.hidden, allowRead: [workspace, tmp, RUNTIME_DIR], allowWrite: [workspace, tmp], denyWrite: [] } }, undefined, { commandId: id });
      } finally {
        process.chdir(saved);
      }
    });
    this.wraps = job.catch(() => undefined);
    return job;
  }
}

function pidsOf(cg: string): number[] {
  try {
    return readFileSync(`${cg}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function run(wrapped: string, cwd: string, env: Record<string, string>, lim: ExecLimits, cg: string): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    // INVARIANT: the shell writes its own pid into the cgroup before it execs the sandbox: nothing of the command runs outside it
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'prlimit', `--fsize=${lim.maxFileBytes}`, '--core=0', '--nofile=4096', '--',
      '/bin/sh', '-c', 'echo $$ > "$0" && exec /bin/bash -c "$1"', `${cg}/cgroup.procs`, wrapped], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const kept = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    let total = 0;
    let killedFor: ExecResult['killedFor'] = null;
    const kill = (why: NonNullable<ExecResult['killedFor']>) => {
      if (killedFor !== null) return;
      killedFor = why;
      if (child.pid !== undefined) killQuietly(-child.pid);
      for (const p of pidsOf(cg)) killQuietly(p);
    };
    for (const name of ['stdout', 'stderr'] as const) {
      child[name].on('data', (d: Buffer) => {
        // a little past the cap is kept, so a secret straddling the cut is masked whole before the cut
        if (total < lim.maxOutputBytes + 4096) kept[name].push(d);
        total += d.length;
        if (total > lim.maxOutputBytes) kill('output_limit');
      });
    }
    const timer = setTimeout(() => kill('timeout'), lim.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolvePromise({ exitCode, signal, killedFor, stdout: Buffer.concat(kept.stdout).toString('utf8'), stderr: Buffer.concat(kept.stderr).toString('utf8'), truncated: total > lim.maxOutputBytes });
    });
  });
}
