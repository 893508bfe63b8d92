import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The CLI as users run it: a real process of bin/gatehouse. Test support only. */
export const BIN = fileURLToPath(new URL('../../bin/gatehouse', import.meta.url));

export function gatehouse(args: string[], input?: string | Buffer, env: Record<string, string> = {}) {
  const r = spawnSync(BIN, args, { input, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
