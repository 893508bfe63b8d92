import { posix } from 'node:path';
import type { Context, Word } from './action.js';

/**
 * Resolves a path the way the shell and the file system would see it, without touching the disk:
 * `~` and `~/…` expand to `home`, relative paths join `cwd`, and `.`/`..`/`//` are folded.
 * Symbolic links are not followed (no I/O in the decision path).
 *
 * @param path  the path as written; `null` (unknown) stays `null`.
 * @param cwd   absolute directory; `null` when unknown, in which case a relative path is unknown.
 * @returns an absolute normalized path without a trailing slash (except `/`), or null.
 * @example resolvePath('../.env', '/home/dev/app', '/home/dev') // '/home/dev/.env'
 */
export function resolvePath(path: Word, cwd: string | null, home: string): Word {
  if (path === null || path === '') return null;
  let p = path;
  if (p === '~' || p.startsWith('~/')) p = home + p.slice(1);
  else if (p.startsWith('~')) {
    // ~user: that user's home, beside ours (/home/dev → /home/other); root's is /root
    const m = /^~([a-z_][a-z0-9_.-]*)(\/.*)?$/i.exec(p);
    if (m === null) return null;
    const user = m[1] as string;
    const base = user === 'root' ? '/root' : /^\/(home|Users)\/[^/]+$/.test(home) ? posix.join(posix.dirname(home), user) : `/home/${user}`;
    p = base + (m[2] ?? '');
  }
  if (!p.startsWith('/')) {
    if (cwd === null) return null;
    p = cwd + '/' + p;
  }
  let out = posix.normalize(p);
  // a process's view of the root directory is the root directory
  const proc = /^\/proc\/[^/]+(?:\/task\/[^/]+)?\/root(\/.*)?$/.exec(out);
  if (proc) out = proc[1] ?? '/';
  // our own working directory, seen through /proc (another process's stays literal: it matches no workspace glob)
  const self = /^\/proc\/(?:self|thread-self)\/cwd(\/.*)?$/.exec(out);
  if (self) return cwd === null ? null : posix.normalize(cwd + (self[1] ?? ''));
  return out.length > 1 && out.endsWith('/') ? out.slice(0, -1) : out;
}

/** Resolves a file action's path against its own `cwd` or the context's workspace. */
export function resolveActionPath(path: string, cwd: string | undefined, ctx: Context): Word {
  return resolvePath(path, cwd ?? ctx.cwd, ctx.home);
}
