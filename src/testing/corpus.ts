import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The shared corpus: `../shared/corpus/*.jsonl` beside the checkout, or the directory named by
 * `GATEHOUSE_CORPUS`. Test support only.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
export const CORPUS_DIR = process.env.GATEHOUSE_CORPUS ?? join(root, '..', 'shared', 'corpus');

export interface CorpusCase {
  id: string;
  kind: string;
  expect: 'allow' | 'gate' | 'deny';
  cwd?: string;
  [key: string]: unknown;
}

/**
 * Every case of every corpus file, with its file and line.
 * @throws Error when the directory or its files are missing: a missing corpus fails, never skips.
 */
export function corpusCases(): { file: string; line: number; c: CorpusCase }[] {
  if (!existsSync(CORPUS_DIR)) throw new Error(`the corpus directory ${CORPUS_DIR} is missing: check the repository out beside shared/, or set GATEHOUSE_CORPUS`);
  const files = readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.jsonl')).sort();
  if (files.length === 0) throw new Error(`no *.jsonl in ${CORPUS_DIR}`);
  return files.flatMap((file) =>
    readFileSync(join(CORPUS_DIR, file), 'utf8').split('\n').flatMap((text, i) => (text.trim() === '' ? [] : [{ file, line: i + 1, c: JSON.parse(text) as CorpusCase }])),
  );
}

/** allow → allow; gate → ask or deny; deny → deny (the corpus README). */
export function meetsExpectation(expect: string, verdict: string): boolean {
  return expect === 'allow' ? verdict === 'allow' : expect === 'gate' ? verdict !== 'allow' : verdict === 'deny';
}
