import { createRequire } from 'node:module';
import { Language, Parser, type Node, type Tree } from 'web-tree-sitter';

/**
 * The bash grammar (tree-sitter-bash's bundled `.wasm`) on web-tree-sitter.
 * Loading is asynchronous and happens once; parsing afterwards is synchronous.
 */

let parser: Parser | null = null;
let loading: Promise<void> | null = null;

/** Loads the WASM runtime and the bash grammar; resolves at once after the first call. */
export function loadShellParser(): Promise<void> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    await Parser.init();
    const bash = await Language.load(require.resolve('tree-sitter-bash/tree-sitter-bash.wasm'));
    const p = new Parser();
    p.setLanguage(bash);
    parser = p;
  })();
  return loading;
}

/**
 * Parses bash text. The caller owns the tree and must `delete()` it (WASM memory).
 * @throws Error when {@link loadShellParser} has not completed.
 */
export function parseBash(text: string): Tree {
  if (parser === null) throw new Error('the bash parser is not loaded (call loadShellParser first)');
  const tree = parser.parse(text);
  if (tree === null) throw new Error('the bash parser returned no tree');
  return tree;
}

/** The first ERROR or MISSING node, depth-first, or null. */
export function firstError(node: Node): Node | null {
  if (node.isError || node.isMissing) return node;
  if (!node.hasError) return null;
  for (const child of node.children) {
    if (child === null) continue;
    const found = firstError(child);
    if (found) return found;
  }
  return node; // hasError with no ERROR child: report the node itself
}

export type { Node };
