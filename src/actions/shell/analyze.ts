import { posix } from 'node:path';
import type { Context, Part, PartTag, ShellPart, Word } from '../action.js';
import { resolvePath } from '../paths.js';
import { analyzeSql } from '../sql/analyze.js';
import { clip } from '../text.js';
import { parseArgv } from './argv.js';
import { applySemantics, type Runner } from './commands.js';
import { firstError, parseBash, type Node } from './parser.js';

/**
 * Shell analysis: every simple command a bash text would run, through pipelines, lists,
 * subshells, `$(…)`, backticks, process substitution, heredocs, functions and control flow,
 * with wrappers unwrapped and nested scripts (`bash -c`, `eval`, piped scripts) parsed again.
 *
 * Anything it cannot account for fails the analysis, and the caller denies.
 */

/** Re-parse and substitution nesting allowed before the analysis gives up (and the action is denied). */
export const MAX_DEPTH = 16;
/** Parts one action may produce before the analysis gives up. */
export const MAX_PARTS = 5000;

export type ShellAnalysis = { ok: true; parts: Part[] } | { ok: false; reason: string };

/**
 * What a command reads on standard input: known text; something unknown (described), which may be
 * a list of paths all matching the glob `paths` (what `find src -name '*.ts'` prints); or nothing.
 */
export type Stdin = { text: string; piped?: boolean } | { unknown: string; paths?: string } | null;

/** Loop bodies analyzed once per value up to this many values; past it the variable is unknown. */
export const MAX_UNROLL = 8;

/** Mutable per-scope state: a `cd` changes `cwd` for the commands after it in the same scope. */
export interface Env {
  cwd: string | null;
  depth: number;
  /** Where this scope sits in the action, innermost first; '' at the top. */
  where: string;
  /** The function whose body this is, for spotting self-recursion. */
  fn: string | null;
  /** Names of functions defined so far in the text. */
  functions: Set<string>;
  /** Values of `for` loop variables in the loop's body. */
  vars?: ReadonlyMap<string, Word>;
}

class AnalysisFailure extends Error {}

const SYSTEM_BIN = /^\/(usr\/(local\/)?)?s?bin\//;
const STATEMENTS = new Set([
  'command', 'redirected_statement', 'pipeline', 'list', 'subshell', 'compound_statement', 'if_statement',
  'while_statement', 'for_statement', 'c_style_for_statement', 'case_statement', 'negated_command',
  'function_definition', 'declaration_command', 'unset_command', 'variable_assignment', 'variable_assignments',
  'test_command',
]);

/**
 * Analyzes bash text.
 *
 * @param command the full text; may hold newlines and heredocs.
 * @param ctx     workspace and home; `cwd` is where the command starts.
 * @returns every part, or `{ok: false, reason}` naming what could not be understood.
 * @throws never (parser not loaded, stack exhaustion and the like become `{ok: false}`).
 * @example analyzeShell('git status && rm -rf dist', ctx) // two shell parts: git, rm
 */
export function analyzeShell(command: string, ctx: Context): ShellAnalysis {
  const walker = new Walker(ctx);
  try {
    walker.script(command, { cwd: ctx.cwd, depth: 0, where: '', fn: null, functions: new Set() }, null);
    return { ok: true, parts: walker.parts };
  } catch (err) {
    if (err instanceof AnalysisFailure) return { ok: false, reason: err.message };
    if (err instanceof RangeError) return { ok: false, reason: 'the command is nested too deeply to analyze' };
    return { ok: false, reason: `the shell analysis failed: ${(err as Error).message ?? String(err)}` };
  }
}

class Walker implements Runner {
  readonly parts: Part[] = [];
  /** Variables expanded by the words of the command being read (innermost command wins). */
  private expanded: string[] = [];
  /** The texts being walked, innermost last: heredoc bodies are cut from them. */
  private readonly sources: string[] = [];
  constructor(readonly ctx: Context) {}

  fail(reason: string): never {
    throw new AnalysisFailure(reason);
  }

  /** Paths written by earlier parts of this action. */
  readonly written = new Set<string>();

  emit(part: Part): void {
    if (this.parts.length >= MAX_PARTS) this.fail(`the command has more than ${MAX_PARTS} parts`);
    if (part.kind === 'file_write' && part.path !== null) this.written.add(part.path);
    this.parts.push(part);
  }

  nested(env: Env, where: string): Env {
    if (env.depth + 1 > MAX_DEPTH) this.fail(`the command nests more than ${MAX_DEPTH} levels deep (${where})`);
    return { ...env, depth: env.depth + 1, where: join(where, env.where) };
  }

  /** Parses and walks a bash text (the top level, `bash -c`, `eval`, a piped or heredoc script). */
  script(text: string, env: Env, stdin: Stdin): void {
    const tree = parseBash(text);
    this.sources.push(text);
    try {
      const bad = firstError(tree.rootNode);
      if (bad !== null) {
        const what = bad.isMissing ? `a missing \`${bad.type}\`` : `\`${clip(bad.text)}\``;
        const inside = env.where ? ` in ${env.where}` : '';
        this.fail(`bash syntax the parser cannot account for${inside}: ${what} at line ${bad.startPosition.row + 1}, column ${bad.startPosition.column + 1}`);
      }
      this.sequence(named(tree.rootNode), env, stdin);
    } finally {
      this.sources.pop();
      tree.delete();
    }
  }

  /**
   * Walks statements in order. `tail`, when given, is the input of the last command: bash binds a
   * heredoc or `<` written after `a && b` to `b`, though the grammar wraps the whole list.
   */
  sequence(nodes: Node[], env: Env, stdin: Stdin, tail?: Stdin, ops?: string[]): Stdin {
    const statements = nodes.filter((n) => n.type !== 'comment');
    let out: Stdin = null;
    statements.forEach((node, i) => {
      const where = statements.length > 1 ? `the ${ordinal(i + 1)} command` : '';
      const child = where ? { ...env, where: join(where, env.where) } : env;
      const last = i === statements.length - 1;
      const before = env.cwd;
      out = this.statement(node, child, i === 0 && !(last && tail !== undefined) ? stdin : null, last ? tail : undefined);
      // INVARIANT: a `cd` or an assignment is seen by the later commands of the same scope; a `cd`
      // certainly happened only before `&&` (after `;`, `||` or a newline it may have failed,
      // and one sent to the background with `&` changes nothing here)
      const op = ops?.[i] ?? (node.nextSibling?.type === '&' ? '&' : ';');
      env.cwd = child.cwd === before || op === '&&' ? child.cwd : op === '&' ? before : null;
      env.vars = child.vars;
    });
    return out;
  }

  statement(node: Node, env: Env, stdin: Stdin, tail?: Stdin): Stdin {
    if (tail !== undefined && node.type !== 'list' && node.type !== 'pipeline') stdin = tail;
    switch (node.type) {
      case 'command':
        return this.command(node, env, stdin);
      case 'redirected_statement':
        return this.redirected(node, env, stdin);
      case 'pipeline':
        return this.pipeline(named(node), env, stdin, tail);
      case 'list': {
        // a && b || c nests to the left; flatten it iteratively to keep the stack shallow
        const items: Node[] = [];
        const ops: string[] = [];
        let cur: Node = node;
        while (cur.type === 'list') {
          const kids = named(cur).filter((n) => n.type !== 'comment');
          items.unshift(...kids.slice(1));
          ops.unshift(cur.children.find((c) => c !== null && !c.isNamed)?.type ?? ';');
          cur = kids[0] as Node;
          if (cur === undefined) break;
        }
        if (cur !== undefined) items.unshift(cur);
        return this.sequence(items, env, stdin, tail, ops);
      }
      case 'subshell':
        return this.sequence(named(node), { ...env }, stdin);
      case 'compound_statement':
      case 'do_group':
      case 'else_clause':
      case 'elif_clause':
        return this.mixed(named(node), env, stdin);
      case 'for_statement':
        return this.uncertain(env, () => this.forLoop(node, env));
      case 'if_statement':
      case 'while_statement':
      case 'c_style_for_statement':
      case 'case_statement':
      case 'case_item':
        return this.uncertain(env, () => {
          this.mixed(named(node), env, null);
          return { unknown: 'the output of a compound command' };
        });
      case 'negated_command':
        return this.mixed(named(node), env, stdin);
      case 'function_definition':
        return this.functionDefinition(node, env);
      case 'declaration_command':
        return this.declaration(node, env);
      case 'unset_command':
        return this.unset(node, env);
      case 'variable_assignment':
      case 'variable_assignments': {
        const list = node.type === 'variable_assignment' ? [node] : named(node);
        const assigns = list.map((a) => this.assignment(a, env, true));
        this.emit(shellPart({ program: null, assigns, tags: ['assignment-only'], env, text: node.text }));
        return null;
      }
      case 'test_command':
        for (const child of named(node)) this.expression(child, env, 'a test');
        this.emit(shellPart({ program: 'test', env, text: node.text }));
        return null;
      case 'comment':
        return null;
      default:
        return this.fail(`a \`${node.type}\` the analysis cannot account for: \`${clip(node.text)}\``);
    }
  }

  /** Children that may be statements or expressions (control flow): statements are walked, words evaluated. */
  mixed(nodes: Node[], env: Env, stdin: Stdin): Stdin {
    let out: Stdin = null;
    for (const child of nodes) {
      if (STATEMENTS.has(child.type) || ['do_group', 'else_clause', 'elif_clause', 'case_item', 'compound_statement'].includes(child.type)) {
        out = this.statement(child, env, stdin);
      } else if (child.type !== 'comment') this.expression(child, env, 'a condition');
    }
    return out;
  }

  pipeline(nodes: Node[], env: Env, stdin: Stdin, tail?: Stdin): Stdin {
    let input = stdin;
    const stages = nodes.filter((n) => n.type !== 'comment');
    stages.forEach((node, i) => {
      const where = `the ${ordinal(i + 1)} command of a pipeline`;
      const last = i === stages.length - 1;
      const fed = i > 0 && input !== null && 'text' in input ? { ...input, piped: true } : input;
      input = this.statement(node, { ...env, where: join(where, env.where) }, last && tail !== undefined ? tail : fed, last ? tail : undefined);
    });
    return input;
  }

  redirected(node: Node, env: Env, stdin: Stdin): Stdin {
    const body = node.childForFieldName('body');
    let input = stdin;
    const after: { pipeline?: Node; right?: Node } = {};
    const redirects = [...node.childrenForFieldName('redirect'), ...node.namedChildren.filter((c) => c?.type === 'herestring_redirect')] as Node[];
    // bash binds a redirect written after `a && b` to `b`: outputs resolve after the list's `cd`s
    const compound = body?.type === 'list' || body?.type === 'pipeline';
    const isOutput = (r: Node) => r.type === 'file_redirect' && !r.children.some((c) => c !== null && !c.isNamed && c.type.startsWith('<'));
    for (const r of redirects) if (!(compound && isOutput(r))) input = this.redirect(r, env, input, after, body?.text ?? '');
    const routed = input !== stdin && compound;
    let out: Stdin = body ? (routed ? this.statement(body, env, stdin, input) : this.statement(body, env, input)) : null;
    if (compound) for (const r of redirects) if (isOutput(r)) this.redirect(r, env, null, after, body?.text ?? '');
    if (after.pipeline) out = this.pipeline(named(after.pipeline), env, out);
    if (after.right) out = this.statement(after.right, env, null);
    return out;
  }

  /** Applies one redirect: output targets become file writes, `<` a file read; returns the new stdin. */
  redirect(r: Node, env: Env, stdin: Stdin, after: { pipeline?: Node; right?: Node }, owner: string): Stdin {
    const role = `a redirect of \`${clip(owner)}\``;
    switch (r.type) {
      case 'file_redirect': {
        const op = r.children.find((c) => c !== null && !c.isNamed)?.type ?? '>';
        const dest = r.childForFieldName('destination');
        if (dest === null) return stdin;
        if ((op === '>&' || op === '<&' || op === '>&-' || op === '<&-') && /^(\d+|-)$/.test(dest.text)) return stdin;
        const target = this.word(dest, env, role);
        // a written name with a substitution inside (`logs/test-$(date +%F).log`): a file in that directory
        const shaped = target === null && op !== '<' ? writeShape(dest) : null;
        const path = resolvePath(target ?? shaped, env.cwd, this.ctx.home);
        const origin = join(`the target of \`${op}\` in \`${clip(owner)}\``, env.where);
        if (op === '<') {
          this.emit({ kind: 'file_read', path, origin, tags: [] });
          return { unknown: `the file ${target ?? '(unknown)'}` };
        }
        if (op === '<>') this.emit({ kind: 'file_read', path, origin, tags: [] });
        this.emit({ kind: 'file_write', path, origin, tags: [] });
        return stdin;
      }
      case 'herestring_redirect': {
        const value = named(r).map((c) => this.word(c, env, role));
        return value.every((v) => v !== null) ? { text: value.join('') + '\n' } : { unknown: 'a here-string with expansions' };
      }
      case 'heredoc_redirect': {
        let text: Stdin = null;
        const start = r.children.find((c) => c?.type === 'heredoc_start');
        const quoted = start !== undefined && start !== null && /['"\\]/.test(start.text);
        const strip = r.children.some((c) => c?.type === '<<-');
        const end = r.children.find((c) => c?.type === 'heredoc_end');
        let body: Node | undefined;
        for (const child of named(r)) {
          if (r.childForFieldName('argument')?.id === child.id || child.type === 'word') {
            // the grammar reads a body line starting with `\` as an argument; a real one we refuse
            if (child.text.startsWith('\n')) {
              if (!quoted) this.expression(child, env, `the heredoc of \`${clip(owner)}\``);
              continue;
            }
            this.fail(`an argument after a heredoc the analysis cannot account for: \`${clip(child.text)}\``);
          }
          switch (child.type) {
            case 'heredoc_start': case 'heredoc_end': break;
            case 'heredoc_body': body = child; break;
            case 'pipeline': after.pipeline = child; break;
            case 'file_redirect': case 'herestring_redirect': case 'heredoc_redirect':
              stdin = this.redirect(child, env, stdin, after, owner); break;
            default:
              if (r.childForFieldName('right')?.id === child.id) after.right = child;
              else this.fail(`a \`${child.type}\` after a heredoc the analysis cannot account for: \`${clip(child.text)}\``);
          }
        }
        if (start && end) {
          // the body is everything from the line after the heredoc's command line to its delimiter
          const source = this.sources[this.sources.length - 1] ?? '';
          const from = source.indexOf('\n', start.endIndex);
          const raw = from >= 0 && from < end.startIndex ? source.slice(from + 1, end.startIndex) : '';
          // bash ends the heredoc at the first line equal to the delimiter with its quotes removed
          const delimiter = start.text.replace(/['"\\]/g, '');
          if (raw.split('\n').some((line) => (strip ? line.replace(/^\t+/, '') : line) === delimiter)) {
            this.fail(`the heredoc \`${clip(start.text)}\` ends earlier than the parser reads it`);
          }
          text = this.heredocBody(raw, body, env, quoted, strip, owner);
        }
        return text ?? stdin;
      }
      default:
        return this.fail(`a redirect \`${clip(r.text)}\` the analysis cannot account for`);
    }
  }

  heredocBody(source: string, body: Node | undefined, env: Env, quoted: boolean, strip: boolean, owner: string): Stdin {
    const raw = strip ? source.replace(/^\t+/gm, '') : source;
    if (quoted) return { text: raw };
    let known = true;
    for (const child of body ? named(body) : []) {
      if (child.type === 'heredoc_content') continue;
      if (this.word(child, env, `the heredoc of \`${clip(owner)}\``) === null) known = false;
    }
    return known ? { text: raw.replace(/\\([$`\\])/g, '$1') } : { unknown: 'a heredoc with expansions' };
  }

  command(node: Node, env: Env, stdin: Stdin): Stdin {
    const outer = this.expanded;
    this.expanded = [];
    try {
      return this.commandWords(node, env, stdin);
    } finally {
      this.expanded = outer;
    }
  }

  private commandWords(node: Node, env: Env, stdin: Stdin): Stdin {
    const assigns: string[] = [];
    for (const child of named(node)) if (child.type === 'variable_assignment') assigns.push(this.assignment(child, env));
    let input = stdin;
    const after: { pipeline?: Node; right?: Node } = {};
    for (const r of node.childrenForFieldName('redirect')) if (r) input = this.redirect(r, env, input, after, node.text);
    const nameNode = node.childForFieldName('name');
    if (nameNode === null) {
      this.emit(shellPart({ program: null, assigns, tags: ['assignment-only'], env, text: node.text }));
      return null;
    }
    const programNode = nameNode.namedChildren[0] ?? nameNode;
    const program = this.word(programNode, env, 'the program name');
    // INVARIANT: a program named through an expansion stays `dynamic-program`, even when a tracked variable resolves it
    const dynamic = programNode.type !== 'word' && programNode.type !== 'raw_string' && programNode.type !== 'string' && programNode.type !== 'concatenation'
      ? true : /\$/.test(programNode.text) && programNode.type !== 'raw_string';
    const argNodes = node.childrenForFieldName('argument').filter((n): n is Node => n !== null);
    const args = argNodes.map((a) => this.word(a, env, `an argument of \`${clip(nameNode.text)}\``));
    const shapes = argNodes.map((a, i) => (args[i] === null ? partialShape(a) : null));
    return this.simple([program, ...args], env, input, { text: node.text, assigns, tags: dynamic && program !== null ? ['dynamic-program'] : [], expands: [...new Set(this.expanded)], shapes });
  }

  /**
   * Judges one simple command given as words: normalizes the program name, parses its options,
   * emits its part and lets the program's semantics add parts (wrapped commands, nested scripts,
   * SQL, files, HTTP). Returns what it writes to standard output, when that is known.
   */
  simple(words: Word[], env: Env, stdin: Stdin, info: { text: string; assigns: string[]; tags: PartTag[]; expands?: string[]; shapes?: (string | null)[] }): Stdin {
    const [first, ...rest] = words;
    if (first === undefined) return null;
    if (first === null) {
      const parsed = parseArgv('', rest);
      this.emit(shellPart({ program: null, ...parsed, assigns: info.assigns, expands: info.expands, tags: ['dynamic-program', ...info.tags], env, text: info.text, ctx: this.ctx }));
      return { unknown: `the output of \`${clip(info.text)}\`` };
    }
    let program = first;
    let script: Word = null;
    const tags: PartTag[] = [...info.tags];
    if (first.includes('/')) {
      const resolved = resolvePath(first, env.cwd, this.ctx.home);
      program = posix.basename(resolved ?? first);
      if (resolved === null || !SYSTEM_BIN.test(resolved)) {
        script = resolved;
        tags.push('script-file');
      }
    }
    if (env.functions.has(program) && env.fn !== program && script === null) {
      return { unknown: `the output of the function \`${program}\`` }; // its body was judged where it was defined
    }
    if (env.fn !== null && program === env.fn) tags.push('self-recursive');
    return applySemantics(this, { program, words: rest, env, stdin, text: info.text, assigns: info.assigns, expands: info.expands ?? [], tags, script, shapes: info.shapes ?? [] });
  }

  /**
   * Runs a compound command whose branches may or may not run: afterwards, a directory or a
   * variable it changed is unknown (old or new).
   */
  uncertain(env: Env, walk: () => Stdin): Stdin {
    const cwd = env.cwd;
    const vars = env.vars;
    const out = walk();
    if (env.cwd !== cwd) env.cwd = null;
    if (env.vars !== vars) {
      const merged = new Map(vars ?? []);
      for (const [k, v] of env.vars ?? []) if ((vars?.get(k) ?? undefined) !== v) merged.set(k, null);
      env.vars = merged;
    }
    return out;
  }

  /** `for x in WORDS; do BODY; done`: the body once per known value, so `$x` keeps its value. */
  forLoop(node: Node, env: Env): Stdin {
    const name = node.childForFieldName('variable')?.text ?? '';
    const valueNodes = node.childrenForFieldName('value').filter((n): n is Node => n !== null);
    const values = valueNodes.map((v) => this.word(v, env, `the values of the loop over \`${name}\``));
    const body = node.childForFieldName('body');
    if (body === null) return null;
    const known = valueNodes.length > 0 && values.length <= MAX_UNROLL && values.every((v) => v !== null);
    for (const value of known ? values : [null]) {
      const vars = new Map(env.vars ?? []);
      vars.set(name, value);
      this.statement(body, { ...env, vars, where: join(`the body of the loop over \`${name}\``, env.where) }, null);
    }
    return { unknown: 'the output of a loop' };
  }

  functionDefinition(node: Node, env: Env): Stdin {
    const name = node.childForFieldName('name')?.text ?? '';
    env.functions.add(name);
    const body = node.childForFieldName('body');
    // the body runs wherever and whenever it is called: directory and variables unknown there
    const unknownVars = new Map([...(env.vars ?? [])].map(([k]) => [k, null] as const));
    if (body) this.statement(body, { ...env, cwd: null, vars: unknownVars, fn: name, where: join(`the body of the function \`${name}\``, env.where) }, null);
    for (const r of node.childrenForFieldName('redirect')) if (r) this.redirect(r, env, null, {}, name);
    return null;
  }

  declaration(node: Node, env: Env): Stdin {
    const keyword = node.children[0]?.type ?? 'declare';
    const assigns: string[] = [];
    const words: Word[] = [];
    for (const child of named(node)) {
      if (child.type === 'variable_assignment') assigns.push(this.assignment(child, env, true));
      else if (child.type === 'variable_name') assigns.push(child.text);
      else words.push(this.word(child, env, `an argument of \`${keyword}\``));
    }
    const parsed = parseArgv(keyword, words);
    const tags: PartTag[] = [];
    const dumps = assigns.length === 0 && parsed.args.length === 0 && !parsed.flags.includes('f') && !parsed.flags.includes('F');
    if (dumps && keyword !== 'local') tags.push('env-dump');
    this.emit(shellPart({ program: keyword, ...parsed, assigns, tags, env, text: node.text, ctx: this.ctx }));
    return dumps ? { unknown: 'the environment' } : null;
  }

  unset(node: Node, env: Env): Stdin {
    const words = named(node).map((c) => this.word(c, env, 'an argument of `unset`'));
    const parsed = parseArgv('unset', words);
    const names = parsed.args.filter((w): w is string => w !== null);
    const vars = new Map(env.vars ?? []);
    for (const n of names) vars.set(n, null);
    env.vars = vars;
    this.emit(shellPart({ program: 'unset', ...parsed, assigns: names, tags: [], env, text: node.text, ctx: this.ctx }));
    return null;
  }

  /**
   * Evaluates an assignment; with `keep`, the variable keeps its value for the later commands of
   * the scope (`d=$HOME; rm -rf "$d"`), null when the value is unknown.
   */
  assignment(node: Node, env: Env, keep = false): string {
    const raw = node.childForFieldName('name')?.text ?? node.text.split('=')[0] ?? '';
    const name = raw.replace(/\[.*$/, '');
    const valueNode = node.childForFieldName('value');
    const value = valueNode ? this.word(valueNode, env, `the value of \`${raw}\``) : '';
    if (keep) {
      const vars = new Map(env.vars ?? []);
      vars.set(name, raw !== name || node.text.includes('+=') ? null : value);
      env.vars = vars;
    }
    return name;
  }

  /** Walks an expression (conditions, arithmetic, case values) for the commands it runs. */
  expression(node: Node, env: Env, role: string): void {
    if (node.type === 'regex' || node.type === 'extglob_pattern') {
      this.word(node, env, role);
      return;
    }
    if (node.type === 'command_substitution' || node.type === 'process_substitution') {
      this.word(node, env, role);
      return;
    }
    if (STATEMENTS.has(node.type)) {
      this.statement(node, env, null);
      return;
    }
    for (const child of named(node)) this.expression(child, env, role);
  }

  /**
   * The value of a word after quote removal and the expansions Gatehouse knows (`~`, `$HOME`,
   * `$PWD`); null when any piece is unknown. Command and process substitutions inside are
   * analyzed as commands that run.
   */
  word(node: Node, env: Env, role: string): Word {
    switch (node.type) {
      case 'word': {
        const text = node.text;
        if (/\{[^{}]*(,|\.\.)[^{}]*\}/.test(text)) return null; // brace expansion: several words
        // a one-character bracket class is that character: `.en[v]` names `.env`
        const unescaped = text.replace(/\\\n/g, '').replace(/\[([^\]\\!^])\]/g, '$1').replace(/\\(.)/gs, '$1');
        if (unescaped === '~' || unescaped.startsWith('~/')) return this.ctx.home + unescaped.slice(1);
        if (unescaped === '~+' || unescaped.startsWith('~+/')) return env.cwd === null ? null : env.cwd + unescaped.slice(2);
        if (unescaped === '~-' || unescaped.startsWith('~-/')) return null; // $OLDPWD
        return unescaped;
      }
      case 'raw_string':
        return node.text.slice(1, -1);
      case 'string': {
        let out: Word = '';
        for (const child of named(node)) {
          const v = child.type === 'string_content' ? child.text.replace(/\\\n/g, '').replace(/\\([$`"\\])/g, '$1') : this.word(child, env, role);
          out = out === null || v === null ? null : out + v;
        }
        return out;
      }
      case 'ansi_c_string':
        return decodeAnsiC(node.text.slice(2, -1));
      case 'translated_string':
        return named(node)[0] ? this.word(named(node)[0] as Node, env, role) : '';
      case 'concatenation': {
        // brace expansion across quoted pieces (`{~,"x/dist"}`): several words, unknown here
        const unquoted = named(node).filter((c) => c.type === 'word').map((c) => c.text).join('\u0000');
        if (/\{/.test(unquoted) && /\}/.test(unquoted) && /,|\.\./.test(unquoted.replace(/\u0000/g, ''))) {
          for (const child of named(node)) this.expression(child, env, role);
          return null;
        }
        if (named(node).every((c) => c.type === 'word')) {
          // all unquoted (`.en[v]` arrives as four words): read it as one word
          const one = node.text.replace(/\\\n/g, '').replace(/\[([^\]\\!^])\]/g, '$1');
          if (!/[{}]/.test(one) && !one.startsWith('~')) return one.replace(/\\(.)/gs, '$1');
        }
        let out: Word = '';
        named(node).forEach((child, i) => {
          let v = this.word(child, env, role);
          if (i > 0 && child.type === 'word' && v !== null && v.startsWith(this.ctx.home) && child.text.startsWith('~')) v = child.text; // ~ only expands first
          out = out === null || v === null ? null : out + v;
        });
        return out;
      }
      case 'simple_expansion':
      case 'expansion': {
        const kids = named(node);
        const only = kids.length === 1 && kids[0]?.type === 'variable_name' ? kids[0].text : null;
        const name = kids.find((k) => k.type === 'variable_name')?.text ?? kids.find((k) => k.type === 'subscript')?.childForFieldName('name')?.text;
        if (name !== undefined) this.expanded.push(name);
        if (node.text.startsWith('${!')) this.expanded.push('!'); // indirection: any variable, by a name chosen at run time
        for (const k of kids) if (k.type !== 'variable_name' && k.type !== 'special_variable_name') this.expression(k, env, role);
        const quoted = node.parent?.type === 'string';
        const split = (v: Word): Word => (v !== null && !quoted && /[\s*?[]/.test(v) ? null : v); // IFS splitting and globbing
        if (only !== null && env.vars?.has(only)) return split(env.vars.get(only) as Word);
        if (only === 'HOME') return this.ctx.home;
        if (only === 'PWD') return env.cwd;
        // numbers the shell fills in ($$, $PPID, $BASHPID): one path segment, so `/proc/$$/environ` stays a path
        const special = kids.length === 1 && kids[0]?.type === 'special_variable_name' ? kids[0].text : null;
        if (special === '$' || special === '!' || only === 'PPID' || only === 'BASHPID' || only === 'UID' || only === 'EUID') return node.text;
        return null;
      }
      case 'command_substitution':
      case 'process_substitution': {
        const label = node.type === 'process_substitution' ? `${node.text.slice(0, 2)}…)` : node.text.startsWith('`') ? '`…`' : '$(…)';
        const inner = this.nested({ ...env }, `inside ${label} in ${role}`);
        const out = this.sequence(named(node), inner, null);
        if (node.type !== 'command_substitution' || out === null) return null;
        // `$(echo /)` is `/`: a known output is the word's value, less trailing newlines;
        // `$(find src -name '*.py')` is the paths it lists, as one glob
        if ('text' in out) {
          const v = out.text.replace(/\n+$/, '');
          return node.parent?.type !== 'string' && /\s/.test(v) ? null : v; // unquoted output is split into words
        }
        return out.paths ?? null;
      }
      case 'arithmetic_expansion':
      case 'brace_expression':
      case 'array':
        for (const child of named(node)) this.expression(child, env, role);
        return null;
      case 'number':
        if (named(node).length > 0) {
          for (const child of named(node)) this.expression(child, env, role);
          return null;
        }
        return node.text;
      case 'extglob_pattern':
      case 'regex':
        // the grammar gives these no children: a substitution inside would run unseen
        if (/\$\(|`|\$\[|<\(|>\(/.test(node.text)) this.fail(`a substitution inside a pattern the analysis cannot account for: \`${clip(node.text)}\``);
        return node.text;
      case 'variable_name':
      case 'special_variable_name':
      case 'test_operator':
        return node.text;
      default:
        if (STATEMENTS.has(node.type)) {
          this.statement(node, env, null);
          return null;
        }
        for (const child of named(node)) this.expression(child, env, role);
        return null;
    }
  }

  sql(text: string, env: Env, where: string, mysql = false): void {
    const result = analyzeSql(mysql ? fromMysql(text) : text, join(where, env.where));
    if (!result.ok) this.fail(`${result.reason} (${join(where, env.where)})`);
    for (const part of result.parts) {
      // in MySQL a schema is a database
      if (mysql && part.statement === 'drop_schema') part.statement = 'drop_database';
      this.emit(part);
    }
    for (const f of result.files) this.emit(f);
  }
}

/** Builds a shell part; `args` are resolved into `paths` against the env's cwd. */
export function shellPart(p: {
  program: string | null;
  subcommand?: string | null;
  flags?: string[];
  options?: Record<string, Word>;
  args?: Word[];
  assigns?: string[];
  expands?: string[];
  tags?: PartTag[];
  script?: Word;
  env: Env;
  text: string;
  ctx?: Context;
}): ShellPart {
  const args = p.args ?? [];
  return {
    kind: 'shell',
    program: p.program,
    subcommand: p.subcommand ?? null,
    flags: p.flags ?? [],
    options: p.options ?? {},
    args,
    paths: p.ctx ? args.map((a) => resolvePath(a, p.env.cwd, (p.ctx as Context).home)) : args.map(() => null),
    assigns: p.assigns ?? [],
    expands: p.expands ?? [],
    script: p.script ?? null,
    cwd: p.env.cwd,
    text: p.text,
    tags: p.tags ?? [],
    origin: p.env.where || 'the command',
  };
}

/**
 * MySQL's common spellings in PostgreSQL's, so the PostgreSQL parser can judge a MySQL client's SQL:
 * backtick identifiers, `LIMIT offset, count`, `INTERVAL 1 DAY`, and the read-only
 * DESCRIBE / SHOW / USE statements (judged as reads). Anything else unparseable still denies.
 */
export function fromMysql(text: string): string {
  return text
    .replace(/`([^`]*)`/g, (_, id: string) => `"${id.replace(/"/g, '""')}"`)
    .replace(/\bLIMIT\s+(\d+)\s*,\s*(\d+)/gi, 'LIMIT $2 OFFSET $1')
    .replace(/\bINTERVAL\s+(\d+)\s+(MICROSECOND|SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|QUARTER|YEAR)S?\b/gi, "INTERVAL '$1 $2'")
    .replace(/(^|;)(\s*)(DESCRIBE|DESC|EXPLAIN)\s+("[^"]+"|[\w.]+)\s*(?=;|$)/gi, '$1$2SELECT 1')
    .replace(/(^|;)(\s*)SHOW\s+(FULL\s+)?(TABLES|DATABASES|SCHEMAS|COLUMNS|FIELDS|INDEX|INDEXES|KEYS|CREATE\s+\w+|PROCESSLIST|VARIABLES|STATUS|GRANTS|WARNINGS|ERRORS|ENGINES|TABLE\s+STATUS|TRIGGERS|EVENTS|PLUGINS|MASTER\s+STATUS|SLAVE\s+STATUS|REPLICA\s+STATUS)\b[^;]*/gi, '$1$2SELECT 1')
    .replace(/(^|;)(\s*)USE\s+("[^"]+"|\w+)/gi, '$1$2SET search_path = $3');
}

/** U+2217: stands for an unknown piece of a name; globs treat it as an ordinary character. */
export const UNKNOWN_PIECE = '\u2217';

/**
 * The shape of a partly known word, unknown pieces as {@link UNKNOWN_PIECE}, when a known
 * directory comes first (`logs/test-$(date +%F).log` → `logs/test-∗.log`); else null.
 * INVARIANT: used for write targets only — the unknown piece is taken to stay within its directory.
 */
function writeShape(node: Node): string | null {
  const shape = partialShape(node);
  if (shape === null) return null;
  const first = shape.indexOf(UNKNOWN_PIECE);
  if (!shape.slice(0, first).includes('/') || shape.startsWith('~') || /(^|\/)\.\.(\/|$)/.test(shape)) return null;
  return shape;
}

/** A partly known word with its unknown pieces as {@link UNKNOWN_PIECE}; null when nothing or everything is known. */
export function partialShape(node: Node): string | null {
  const piece = (n: Node): string => {
    switch (n.type) {
      case 'word': return /[{}]/.test(n.text) ? UNKNOWN_PIECE : n.text.replace(/\\(.)/g, '$1');
      case 'raw_string': return n.text.slice(1, -1);
      case 'string_content': return n.text.replace(/\\([$`"\\])/g, '$1');
      case 'string': case 'concatenation': return named(n).map(piece).join('');
      default: return UNKNOWN_PIECE;
    }
  };
  const shape = piece(node);
  return shape.includes(UNKNOWN_PIECE) && shape.replaceAll(UNKNOWN_PIECE, '') !== '' ? shape : null;
}

function named(node: Node): Node[] {
  return node.namedChildren.filter((c): c is Node => c !== null);
}

export function join(inner: string, outer: string): string {
  return inner && outer ? `${inner}, ${outer}` : inner || outer;
}

export function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${s}`;
}


/**
 * Decodes `$'…'`; null (unknown) for escapes Gatehouse does not model (`\U`, `\c`), a NUL (bash
 * cuts the string there) or any control character in the result.
 */
function decodeAnsiC(s: string): Word {
  if (/\\[Uc]|\\x(?![0-9a-fA-F])|\\u(?![0-9a-fA-F])/.test(s)) return null;
  const out = s.replace(/\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|[0-7]{1,3}|.)/gs, (_, e: string) => {
    if (e[0] === 'x' || e[0] === 'u') return String.fromCodePoint(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', f: '\f', v: '\v' } as Record<string, string>)[e] ?? e;
  });
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x08\x0b-\x1f\x7f]/.test(out) ? null : out;
}
