import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../actions/action.js';
import { loadParsers } from '../actions/classify.js';
import { defaultPolicy } from '../policy/load.js';
import { corpusCases } from '../testing/corpus.js';
import { decide, type Decision } from './decide.js';

const ctx = { cwd: '/home/dev/app', home: '/home/dev' };
const sh = (command: string): Action => ({ kind: 'shell', command, cwd: ctx.cwd });
const sql = (text: string): Action => ({ kind: 'sql', sql: text, dialect: 'postgres' });

/** Reasons that mean an internal fault was caught, not a judgement: a bug even though it fails closed. */
const INTERNAL = /analysis failed|decision failed|is not a function|Cannot read properties|undefined/;

before(() => loadParsers());

function deniedWithReason(action: Action, why?: RegExp): Decision {
  const d = decide(defaultPolicy(), action, ctx);
  assert.equal(d.verdict, 'deny', `${JSON.stringify(action).slice(0, 120)} → ${d.verdict}`);
  assert.ok(d.reasons.length > 0 && (d.reasons[0] as string).length > 0, 'a deny says why');
  assert.doesNotMatch(d.reasons.join(' '), INTERNAL, 'a clear reason, not an internal fault');
  if (why) assert.match(d.reasons.join(' '), why);
  return d;
}

describe('bad input: a clear deny, never a crash, a hang or an allow', () => {
  it('empty and blank commands', () => {
    deniedWithReason(sh(''), /empty/);
    deniedWithReason(sh(' \n\t '), /empty/);
    assert.equal(decide(defaultPolicy(), sh('# rm -rf / only a comment'), ctx).verdict, 'allow', 'only comments: nothing runs');
    deniedWithReason(sql(''), /empty/);
    assert.equal(decide(defaultPolicy(), sql('-- DROP DATABASE x'), ctx).verdict, 'allow', 'only a comment');
  });

  it('a 1 MB command or SQL text', () => {
    deniedWithReason(sh('echo ' + 'a'.repeat(1 << 20)), /limit is/);
    deniedWithReason(sql('SELECT ' + '1,'.repeat(1 << 19) + '1'), /limit is/);
  });

  it('binary garbage, NUL bytes and control characters', () => {
    let seed = 7;
    const bytes = Array.from({ length: 4096 }, () => String.fromCharCode((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256)).join('');
    deniedWithReason(sh(bytes));
    deniedWithReason(sh('ls\0-la'), /U\+0000/);
    deniedWithReason(sh('echo \x1b[31mred'), /control character/);
    deniedWithReason(sql('SELECT 1\0'), /control character/);
    deniedWithReason({ kind: 'file_read', path: '/home/dev/app/a\0.env' }, /control character/);
  });

  it('invalid UTF-8 and lone surrogates', () => {
    deniedWithReason(sh('echo \uFFFD'), /UTF-8/);
    deniedWithReason(sh('echo \uD800'), /UTF-8/);
    deniedWithReason({ kind: 'http', method: 'GET', url: 'https://a.dev/\uDFFF' }, /UTF-8/);
  });

  it('unbalanced quotes and syntax errors', () => {
    for (const c of ['echo "a', "echo 'a", 'echo $(ls', 'echo `ls', 'ls )', 'if true; then', '{ ls', 'cat <<EOF\nno end', 'a && && b', 'rm -rf ( /']) {
      deniedWithReason(sh(c));
    }
  });

  it('deep nesting: past the limit it is a deny, not a stack overflow', () => {
    deniedWithReason(sh('echo ' + '$('.repeat(5000) + 'ls' + ')'.repeat(5000)));
    deniedWithReason(sh('echo ' + '"$('.repeat(3000) + 'ls' + ')"'.repeat(3000)));
    deniedWithReason(sh('('.repeat(10000) + 'ls' + ')'.repeat(10000)));
    deniedWithReason(sh('eval '.repeat(40) + 'ls'), /nests more than/);
    deniedWithReason(sh('sudo '.repeat(40) + 'ls'), /nests more than/);
    assert.equal(decide(defaultPolicy(), sql('SELECT ' + '('.repeat(5000) + '1' + ')'.repeat(5000)), ctx).verdict, 'allow', 'deep but valid SQL is judged');
    deniedWithReason(sql('SELECT ' + '('.repeat(100000) + '1' + ')'.repeat(100000)));
  });

  it('long lists stay within the stack and are judged', () => {
    const d = decide(defaultPolicy(), sh(Array.from({ length: 20000 }, () => 'ls').join(' && ')), ctx);
    assert.equal(d.verdict, 'deny', 'more parts than the limit');
    assert.match(d.reasons.join(' '), /more than \d+ parts/);
    assert.equal(decide(defaultPolicy(), sh(Array.from({ length: 2000 }, () => 'ls').join(' && ')), ctx).verdict, 'allow');
  });

  it('SQL the parser rejects, URLs that do not parse, wrong shapes', () => {
    deniedWithReason(sql('DELETE FRM orders'), /syntax error/);
    deniedWithReason(sql("SELECT 'unterminated"), /PostgreSQL parser rejects/);
    deniedWithReason({ kind: 'http', method: 'GET', url: 'http://' }, /does not parse/);
    deniedWithReason({ kind: 'mcp_tool', server: 's', tool: 'run_command', arguments: { command: 'echo "x' } });
    deniedWithReason({ kind: 'file_read', path: '~other/.ssh/id_rsa' }, /credentials/);
    deniedWithReason({ kind: 'file_read', path: '~!odd/x' }, /cannot be resolved/);
  });
});

describe('fuzz: mutated corpus actions always get a verdict, never an internal fault', () => {
  it('survives 3000 seeded mutations', () => {
    const corpus = corpusCases().map((x) => x.c).filter((c) => c.kind === 'shell' || c.kind === 'sql');
    let state = 0x2f6b1a;
    const rand = (n: number) => {
      state ^= state << 13; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
      return state % n;
    };
    const alphabet = ['$', '(', ')', '`', "'", '"', '|', ';', '&', '<', '>', '{', '}', '[', ']', '*', '\\', '\n', ' ', '#', '~', '!', '=', '-', 'a', '\u00e9', '\uFFFD', '\0', '$(', '<<EOF\n'];
    for (let i = 0; i < 3000; i++) {
      const c = corpus[rand(corpus.length)] as Record<string, string>;
      let text = c.kind === 'shell' ? c.command as string : c.sql as string;
      for (let m = 1 + rand(4); m > 0; m--) {
        const at = rand(text.length + 1);
        switch (rand(4)) {
          case 0: text = text.slice(0, at) + text.slice(at + 1); break;
          case 1: text = text.slice(0, at) + (alphabet[rand(alphabet.length)] as string) + text.slice(at); break;
          case 2: text = text.slice(0, at) + text.slice(rand(text.length), rand(text.length)) + text.slice(at); break;
          default: text = text.slice(at) + text.slice(0, at);
        }
      }
      const action: Action = c.kind === 'shell' ? sh(text) : sql(text);
      let d: Decision;
      try {
        d = decide(defaultPolicy(), action, ctx);
      } catch (err) {
        assert.fail(`decide threw on ${JSON.stringify(text)}: ${(err as Error).stack}`);
      }
      assert.ok(['allow', 'ask', 'deny'].includes(d.verdict));
      if (d.verdict !== 'allow') assert.ok(d.reasons.length > 0, `no reason for ${JSON.stringify(text)}`);
      assert.doesNotMatch(d.reasons.join(' '), INTERNAL, `internal fault on ${JSON.stringify(text)}`);
    }
  });
});

describe('wrapping never weakens a verdict', () => {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const wrappers: [string, (c: string) => string][] = [
    ['bash -c', (c) => `bash -c ${quote(c)}`],
    ['eval', (c) => `eval ${quote(c)}`],
    ['subshell', (c) => `(${c}\n)`],
    ['block', (c) => `{ ${c}\n}`],
    ['after &&', (c) => `true && ${c}`],
    ['$(…)', (c) => `echo "$(${c}\n)"`],
    ['heredoc to sh', (c) => `sh <<'GATEHOUSE_EOF'\n${c}\nGATEHOUSE_EOF`],
    ['if', (c) => `if true; then ${c}\nfi`],
  ];
  const cases = corpusCases().map((x) => x.c).filter((c) => c.kind === 'shell' && c.expect !== 'allow');
  for (const [name, wrap] of wrappers) {
    it(`keeps every gate and deny of the corpus through ${name}`, () => {
      const weakened: string[] = [];
      for (const c of cases) {
        const d = decide(defaultPolicy(), sh(wrap(c.command as string)), ctx);
        if (d.verdict === 'allow' || (c.expect === 'deny' && d.verdict !== 'deny')) weakened.push(`${c.id} (${c.expect}) → ${d.verdict}: ${d.reasons[0]}`);
      }
      assert.deepEqual(weakened, []);
    });
  }
});
