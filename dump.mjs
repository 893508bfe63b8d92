import { Parser, Language } from 'web-tree-sitter';
import { createRequire } from 'node:module';
const require = createRequire('/work/main/package.json');
await Parser.init();
const lang = await Language.load(require.resolve('tree-sitter-bash/tree-sitter-bash.wasm'));
const p = new Parser(); p.setLanguage(lang);
function show(n, d=0){ const f = n.parent ? (()=>{ for (let i=0;i<n.parent.childCount;i++){ if (n.parent.child(i).id===n.id) return n.parent.fieldNameForChild(i);} })() : null;
  console.log('  '.repeat(d)+(f?f+': ':'')+(n.isNamed?n.type:JSON.stringify(n.type))+(n.childCount===0||n.type==='word'?' '+JSON.stringify(n.text):'')); for (const c of n.children) show(c,d+1); }
for (const s of process.argv.slice(2)) { console.log('### '+s); show(p.parse(s).rootNode); }
