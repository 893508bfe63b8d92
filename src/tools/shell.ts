import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { redactText } from '../audit/redact.js';
import type { Judge } from '../enforcers/mcp/judge.js';
import type { ExecLimits, Sandbox } from './sandbox.js';
import { approved, type ToolResult } from './sql.js';

/**
 * `shell_exec`: a command judged by the pipeline like any shell action, then run in the sandbox
 * (`sandbox.ts`) with a scrubbed environment: only the variables below, nothing the agent was not
 * lent. Output is size-capped and time-limited, and secrets in it are masked.
 */

/** The whole environment a command gets; HOME is the workspace. */
function commandEnv(workspace: string): Record<string, string> {
  return { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: workspace, LANG: 'C.UTF-8', TERM: 'dumb' };
}

const text = (t: string, isError = false): ToolResult => ({ content: [{ type: 'text', text: t }], ...(isError ? { isError: true } : {}) });

/**
 * Judges and, when allowed, runs `command` in `cwd` (inside `workspace`). Never throws.
 * @param judge the session's judge; an ask waits for a reviewer when `judge.wait` exists, else is denied.
 */
export async function shellExec(sandbox: Sandbox, judge: Judge, workspace: string, command: string, cwd: string | undefined, limits: Partial<ExecLimits>, reason?: string, signal?: AbortSignal): Promise<ToolResult> {
  const dir = resolve(workspace, cwd ?? '.');
  // INVARIANT: the directory a command runs in is the workspace or below it once symbolic links are followed
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return text(`Gatehouse: cwd ${dir} does not exist`, true);
  }
  const inside = relative(realpathSync(workspace), real);
  if (inside.startsWith('..') || isAbsolute(inside)) return text(`Gatehouse: cwd ${dir} is outside the workspace ${workspace}`, true);
  const body = { kind: 'shell', command, cwd: dir, ...(reason ? { reason } : {}) };
  try {
    let decided = await judge.decide(body);
    if (decided.verdict === 'ask') {
      decided = await approved(judge, decided, body, signal, 'this command');
      if (decided.verdict !== 'allow') return text(`Gatehouse: ${decided.reasons.join('; ')}`, true);
    }
    if (decided.verdict !== 'allow') return text(`Gatehouse denied this command (rule ${decided.rule.id}): ${decided.reasons.join('; ')}`, true);
    if (signal?.aborted) return text('Gatehouse: the call was cancelled; nothing was run', true);
    const r = await sandbox.exec(command, real, realpathSync(workspace), commandEnv(workspace), limits);
    const why = r.killedFor === 'timeout' ? `killed: it ran past ${Math.round((limits.timeoutMs ?? 30_000) / 1000)} s` : r.killedFor === 'output_limit' ? 'killed: its output passed the limit' : r.killedFor === 'memory_limit' ? 'killed: it passed its memory limit' : null;
    const status = why ?? (r.signal !== null ? `killed by ${r.signal}` : `exit ${r.exitCode}`);
    const cap = limits.maxOutputBytes ?? 1 << 20;
    const [out, err] = await Promise.all([redactText(r.stdout), redactText(r.stderr)]);
    const failed = r.exitCode !== 0 || r.killedFor !== null;
    const outcome = await judge.outcome(failed ? { decision: decided.decision, status: 'error', ...(r.exitCode !== null ? { exitCode: r.exitCode } : {}), error: `${status}; ${err.slice(-2000)}` } : { decision: decided.decision, status: 'ok', exitCode: 0 });
    const o = out.slice(0, cap).replace(/\n$/, '');
    const e = err.slice(0, cap).replace(/\n$/, '');
    const shown = `${o}${e ? `${o ? '\n' : ''}[stderr]\n${e}` : ''}${r.truncated ? '\n[output cut at the limit]' : ''}`;
    const note = outcome?.message === undefined ? '' : `\nGatehouse: ${outcome.message}`;
    return { ...text(`${shown}${shown ? '\n' : ''}[${status}]${note}`, failed), structuredContent: { exitCode: r.exitCode, signal: r.signal, killedFor: r.killedFor, errorClass: outcome?.class ?? null } };
  } catch (err) {
    return text(`Gatehouse: the command was not run: ${(err as Error).message}`, true);
  }
}
