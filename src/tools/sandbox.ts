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
 * - memory: a `memory` cgroup per command (`memory.limit_in_bytes` on cgroup v1, `memory.max` on
 *   v2), which also bounds what the command writes to its hidden, RAM-backed temp directories
 *   (tmpfs pages are charged to the writer's cgroup): past it the kernel's OOM killer ends it;
 * - file size: `RLIMIT_FSIZE` (`prlimit --fsize`): a process writing past it gets SIGXFSZ;
 * - time and output: a wall-clock timeout and an output cap kill the whole tree (the process group
 *   of the outer bwrap; `--die-with-parent` then tears down its PID namespace), and the cgroup is
 *   swept until empty; `setpriv --pdeathsig` kills the sandbox if Gatehouse dies.
 *
 * Fail closed: a command runs only when its cgroups could be made. Total disk use in the workspace
 * is not capped here (one file is; see the README). Linux only; needs `bwrap`, `socat`, `rg`, `setpriv`, `prlimit`.
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
  /** Bytes of memory of the whole tree, RAM-backed temp files included (memory cgroup). */
  maxMemoryBytes: number;
}

export interface ExecResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Why Gatehouse (or the kernel, at the memory cap) ended the command early, if it did. */
  killedFor: 'timeout' | 'output_limit' | 'memory_limit' | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

const DEFAULT_LIMITS: ExecLimits = { timeoutMs: 30_000, maxOutputBytes: 1 << 20, maxFileBytes: 100 << 20, maxPids: 256, maxMemoryBytes: 512 << 20 };
/** Hidden from every command (a hidden directory appears empty); the workspace is readable even when below one of them. */
const HIDDEN = ['/root', '/home', '/tmp', '/var/tmp', '/etc/shadow', '/etc/gshadow', '/etc/ssh', '/etc/sudoers', '/etc/sudoers.d'];
/** Where per-command cgroups are made: cgroup v1's pids and memory hierarchies, or one delegated v2 subtree holding both. */
const CGROUPS = [
  { pids: '/sys/fs/cgroup/pids/gatehouse', memory: '/sys/fs/cgroup/memory/gatehouse' },
  { pids: '/sys/fs/cgroup/gatehouse', memory: '/sys/fs/cgroup/gatehouse' },
];
/** sandbox-runtime's own helpers (seccomp) run inside the sandbox: its directory stays readable even when Gatehouse is installed below a hidden path. */
const RUNTIME_DIR = dirname(createRequire(import.meta.url).resolve('@anthropic-ai/sandbox-runtime/package.json'));

export class Sandbox {
  private cgroupRoot: { pids: string; memory: string } | null = null;
  // sandbox-runtime takes its built-in write protections (.bashrc, .git/hooks…) from process.cwd(): wraps run one at a time, there
  private wraps: Promise<unknown> = Promise.resolve();

  private constructor(private readonly hidden: string[]) {}

  /**
   * Starts the sandbox's network proxy for `allowedHosts` (one list per process).
   * @throws GatehouseError `sandbox_unavailable` when bubblewrap & co. are missing or no pids and memory cgroups can be made.
   */
  static async start(allowedHosts: string[], hidden: string[] = []): Promise<Sandbox> {
    const deps = SandboxManager.checkDependencies();
    if (deps.errors.length > 0) throw new GatehouseError('sandbox_unavailable', `the sandbox cannot run here: ${deps.errors.join('; ')} (Debian: apt-get install bubblewrap socat ripgrep)`);
    const box = new Sandbox([...HIDDEN, ...hidden]);
    for (const root of CGROUPS) {
      try {
        mkdirSync(root.pids, { recursive: true });
        mkdirSync(root.memory, { recursive: true });
        const v1 = root.pids !== root.memory;
        const pids = existsSync(`${root.pids}/cgroup.procs`) && (v1 || existsSync(`${root.pids}/pids.max`));
        const memory = existsSync(`${root.memory}/cgroup.procs`) && (v1 || existsSync(`${root.memory}/memory.max`));
        if (pids && memory) {
          box.cgroupRoot = root;
          break;
        }
      } catch {
        // not this hierarchy
      }
    }
    if (box.cgroupRoot === null) throw new GatehouseError('sandbox_unavailable', 'no pids and memory cgroups could be made (cgroup v1 pids and memory, or a delegated v2 subtree with both controllers): a command could fork or allocate without limit, so none runs');
    // empty cgroups a killed Gatehouse left behind go; a busy one (another instance's command) stays: rmdir refuses it
    for (const root of new Set([box.cgroupRoot.pids, box.cgroupRoot.memory])) {
      for (const entry of readdirSync(root, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        try {
          rmdirSync(`${root}/${entry.name}`);
        } catch {
          // still has processes
        }
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
    const root = this.cgroupRoot as { pids: string; memory: string };
    const cg = `${root.pids}/${id}`;
    const mem = `${root.memory}/${id}`;
    const tmp = mkdtempSync('/tmp/gatehouse-exec-');
    let wrappedOk = false;
    try {
      // INVARIANT: sandbox-runtime's own protections (.git/hooks, .git/config, dotfiles) are taken from the directory it wraps in: always the workspace root; the command then moves to its cwd
      const wrapped = await this.wrap(workspace, `export TMPDIR='${tmp}'\ncd -- '${dir.replace(/'/g, `'\\''`)}' || exit 126\n${command}`, id, tmp);
      wrappedOk = true;
      try {
        mkdirSync(cg);
        writeFileSync(`${cg}/pids.max`, String(lim.maxPids));
        if (mem !== cg) {
          mkdirSync(mem);
          writeFileSync(`${mem}/memory.limit_in_bytes`, String(lim.maxMemoryBytes));
          // with swap accounting, swap counts too (absent when the kernel does not account it)
          if (existsSync(`${mem}/memory.memsw.limit_in_bytes`)) writeFileSync(`${mem}/memory.memsw.limit_in_bytes`, String(lim.maxMemoryBytes));
        } else {
          writeFileSync(`${mem}/memory.max`, String(lim.maxMemoryBytes));
          if (existsSync(`${mem}/memory.swap.max`)) writeFileSync(`${mem}/memory.swap.max`, '0');
        }
      } catch (err) {
        removeGroups(cg, mem);
        throw new GatehouseError('sandbox_unavailable', `the command's cgroups could not be made (${(err as Error).message}); it did not run`);
      }
      try {
        return await run(wrapped, dir, env, lim, cg, mem);
      } finally {
        for (let i = 0; i < 400 && pidsOf(cg).length > 0; i++) {
          for (const p of pidsOf(cg)) killQuietly(p);
          await new Promise((r) => setTimeout(r, 5));
        }
        removeGroups(cg, mem);
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

/** A process that would not die keeps its cgroup; it stays visible in the hierarchy. */
function removeGroups(...dirs: string[]): void {
  for (const d of new Set(dirs)) {
    try {
      rmdirSync(d);
    } catch {
      // not made, or still busy
    }
  }
}

/** Processes the kernel's OOM killer ended in the memory cgroup (`oom_kill` of v1's memory.oom_control, v2's memory.events). */
function oomKills(mem: string): number {
  for (const file of ['memory.oom_control', 'memory.events']) {
    try {
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(`${mem}/${file}`, 'utf8'));
      if (m !== null) return Number(m[1]);
    } catch {
      // the other version's file
    }
  }
  return 0;
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

function run(wrapped: string, cwd: string, env: Record<string, string>, lim: ExecLimits, cg: string, mem: string): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    // INVARIANT: the shell writes its own pid into both cgroups before it execs the sandbox: nothing of the command runs outside them
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'prlimit', `--fsize=${lim.maxFileBytes}`, '--core=0', '--nofile=4096', '--',
      '/bin/sh', '-c', 'echo $$ > "$0" && echo $$ > "$2" && exec /bin/bash -c "$1"', `${cg}/cgroup.procs`, wrapped, `${mem}/cgroup.procs`], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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
      if (killedFor === null && oomKills(mem) > 0) killedFor = 'memory_limit';
      resolvePromise({ exitCode, signal, killedFor, stdout: Buffer.concat(kept.stdout).toString('utf8'), stderr: Buffer.concat(kept.stderr).toString('utf8'), truncated: total > lim.maxOutputBytes });
    });
  });
}
