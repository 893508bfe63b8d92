import type { Word } from '../action.js';

/**
 * Option parsing for known programs, so that `-rf`, `-r -f` and `--recursive --force` give the
 * same normalized flags, and so that an option's value is never mistaken for a positional.
 *
 * Spec notation, one string per program or `program subcommand`, tokens separated by spaces:
 * - `r,R=recursive`: short `-r` and `-R` and long `--recursive` all normalize to `recursive`;
 * - a trailing `:` means the option takes a value (`c=command:` → `-c TEXT`, `--command=TEXT`);
 * - `C:` alone is a short option named by its letter; `auto-approve` alone a long one;
 * - `@sub`: the first positional is a subcommand (whose own spec is `program subcommand`);
 * - `@long1`: long options are written with one dash (`-auto-approve`, `-name`);
 * - `@stop`: after the subcommand every word is the subcommand's (`npx tsc -p x`: `-p` is tsc's).
 * Sources: each program's manual page.
 */
const SPECS: Record<string, string> = {
  rm: 'r,R=recursive f=force d=dir i=interactive I=interactive-once v=verbose',
  rmdir: 'p=parents v=verbose',
  cp: 'r,R=recursive a=archive f=force t=target-directory: S=suffix: v=verbose',
  mv: 'f=force t=target-directory: n=no-clobber S=suffix: v=verbose',
  chmod: 'R=recursive v=verbose c=changes f=silent reference:',
  chown: 'R=recursive v=verbose c=changes f=silent reference:',
  chgrp: 'R=recursive v=verbose c=changes f=silent reference:',
  shred: 'u=remove z=zero n=iterations: s=size: f=force v=verbose',
  grep: 'r,R=recursive l=files-with-matches e=regexp: f=file: A=after-context: B=before-context: C=context: m=max-count: include: exclude: exclude-dir:',
  egrep: 'r,R=recursive e=regexp: f=file: A=after-context: B=before-context: C=context: m=max-count:',
  fgrep: 'r,R=recursive e=regexp: f=file: A=after-context: B=before-context: C=context: m=max-count:',
  rg: 'e=regexp: f=file: g=glob: t=type: T=type-not: A=after-context: B=before-context: C=context: m=max-count: M=max-columns: j=threads: max-depth: l=files-with-matches',
  sed: 'i=in-place e=expression: f=file: n=quiet E=regexp-extended r=regexp-extended s=separate l=line-length:',
  awk: 'f=file: v=assign: F=field-separator:',
  gawk: 'f=file: v=assign: F=field-separator:',
  head: 'n=lines: c=bytes:',
  tail: 'n=lines: c=bytes: f=follow',
  sort: 'o=output: k=key: t=field-separator: T=temporary-directory:',
  unzip: 'd=exdir: x: o=overwrite',
  tee: 'a=append i=ignore-interrupts',
  jq: 'f=from-file: arg: argjson: slurpfile: rawfile: indent:',
  curl: 'g=globoff unix-socket: abstract-unix-socket: output-dir: X=request: d=data: F=form: T=upload-file: o=output: H=header: u=user: A=user-agent: e=referer: b=cookie: c=cookie-jar: K=config: m=max-time: w=write-out: x=proxy: I=head G=get s=silent S=show-error L=location f=fail k=insecure v=verbose O=remote-name i=include data-binary: data-raw: data-urlencode: data-ascii: json: url: connect-timeout: retry: output-dir: cacert: cert: key: resolve: max-redirs: form-string:',
  wget: 'e=execute: O=output-document: o=output-file: P=directory-prefix: i=input-file: q=quiet U=user-agent: header: post-data: post-file: method: body-data: body-file:',
  psql: 'c=command: f=file: h=host: p=port: U=username: d=dbname: v=set: o=output: L=log-file: P=pset: F=field-separator: R=record-separator: X=no-psqlrc q=quiet t=tuples-only A=no-align 1=single-transaction',
  mysql: 'e=execute: u=user: h=host: P=port: D=database: S=socket: B=batch N=skip-column-names',
  mariadb: 'e=execute: u=user: h=host: P=port: D=database: S=socket: B=batch N=skip-column-names',
  sqlite3: '@long1 cmd: init: separator: nullvalue: newline:',
  node: 'e=eval: p=print: r=require: C=conditions: i=interactive input-type: import: loader: experimental-loader:',
  nodejs: 'e=eval: p=print: r=require: i=interactive',
  deno: '@sub',
  bun: '@sub e=eval: p=print:',
  bundle: '@sub',
  pipenv: '@sub',
  pdm: '@sub',
  mise: '@sub',
  asdf: '@sub',
  conda: '@sub',
  direnv: '@sub',
  python: 'c=command: m=module: W: X: O u B E s S I i q',
  python3: 'c=command: m=module: W: X: O u B E s S I i q',
  python2: 'c=command: m=module: W: X: O u B E s S I i q',
  perl: 'e: E: M: I: n p l a w s i',
  ruby: 'e: r: I: n p l a w c d',
  php: 'r: f: B: R: E:',
  lua: 'e: l:',
  bash: 'c o: O: rcfile: init-file: s i l x e',
  sh: 'c o: O: s i l x e',
  zsh: 'c o: s i l x e',
  dash: 'c o: s i l x e',
  ksh: 'c o: s i l x e',
  git: '@sub C: c: git-dir: work-tree: namespace: exec-path: P=no-pager output:',
  'git push': 'f=force d=delete u=set-upstream o=push-option: repo: n=dry-run',
  'git clean': 'n=dry-run f=force d=dirs x=ignored X=only-ignored i=interactive e=exclude:',
  'git branch': 'D=delete-force d=delete f=force m=move M=move-force',
  'git checkout': 'f=force b: B:',
  'git switch': 'f=force c=create: C=force-create: discard-changes',
  'git log': 'n=max-count: grep: author: since: until: format: pretty:',
  'git commit': 'm=message: F=file: a=all author: date: template:',
  'git tag': 'd=delete f=force m=message: F=file: a=annotate s=sign',
  'git notes': 'm=message: F=file: f=force',
  'git clone': 'template: b=branch: o=origin: u=upload-pack: c=config:',
  'git init': 'template:',
  'git worktree': 'f=force b:',
  'git stash': '',
  'git restore': 's=source: S=staged W=worktree',
  'git rebase': 'i=interactive',
  'git gc': '',
  kubectl: '@sub n=namespace: l=selector: o=output: f=filename: c=container: s=server: context: cluster: kubeconfig: user: token: replicas: since: grace-period: raw: template: address:',
  helm: '@sub n=namespace: f=values: kube-context: kubeconfig: set: version: o=output:',
  terraform: '@sub @long1 chdir: var: var-file: target: out: state: auto-approve destroy',
  tofu: '@sub @long1 chdir: var: var-file: target: out: state: auto-approve destroy',
  npm: '@sub w=workspace: prefix: registry: access: tag: otp: g=global D=save-dev S=save',
  pnpm: '@sub C=dir: F=filter: w=workspace-root',
  yarn: '@sub',
  npx: '@sub @stop p=package: c=call:',
  docker: '@sub H=host: context: config: l=log-level: e=env: v=volume: p=publish: name: w=workdir: u=user: network: entrypoint: f=force a=all format:',
  podman: '@sub format: e=env: v=volume: p=publish: name: w=workdir: u=user: network: entrypoint: f=force a=all',
  gh: '@sub R=repo: X=method: F=field: f=raw-field: input: body-file: H=header: q=jq: t=template:',
  'gh auth': 't=show-token h=hostname:',
  aws: '@sub profile: region: output: endpoint-url: instance-type: instance-id: desired-capacity: desired-count: max-size: min-size: auto-scaling-group-name: cluster: service: db-instance-class: cache-node-type:',
  gcloud: '@sub project: account: configuration: machine-type: num-nodes: zone: region: cluster:',
  az: '@sub size: resource-group: g=resource-group: n=name: node-vm-size: node-count:',
  cargo: '@sub',
  go: '@sub @long1',
  pip: '@sub r=requirement: i=index-url:',
  pip3: '@sub r=requirement: i=index-url:',
  apt: '@sub y=yes',
  'apt-get': '@sub y=yes',
  brew: '@sub',
  systemctl: '@sub',
  make: 'C=directory: f=file: j=jobs: p=print-data-base',
  ssh: 'i: p: l: o: F: J: L: R: D: W: b: c: E: e: I: m: O: Q: S: w: B:',
  scp: 'i: P: l: o: F: J: S: c: r=recursive',
  rsync: 'e=rsh: a=archive r=recursive delete exclude: include: n=dry-run',
  tar: 'f=file: C=directory: c=create x=extract t=list z=gzip j=bzip2 J=xz v=verbose I=use-compress-program: to-command: checkpoint-action: info-script: F=new-volume-script: checkpoint:',
  zip: 'r=recursive x=exclude: i=include:',
  gsutil: '@sub m',
  hyperfine: 'p=prepare: c=cleanup: w=warmup: r=runs: m=min-runs: M=max-runs: n=command-name: export-json: export-markdown: s=style: S=shell: N',
  perf: '@sub',
  pulumi: '@sub s=stack: C=cwd: y=yes',
  terragrunt: '@sub @long1',
  cdk: '@sub',
  sam: '@sub',
  serverless: '@sub',
  sls: '@sub',
  fly: '@sub a=app:',
  flyctl: '@sub a=app:',
  vercel: '@sub',
  netlify: '@sub',
  heroku: '@sub a=app:',
  doctl: '@sub',
  poetry: '@sub',
  alembic: '@sub c=config: n=name: x:',
  rustup: '@sub',
  'redis-cli': '@sub h: p: a: n: u: s: user: pass: tls c',
  bunx: '@sub @stop p=package:',
  gem: '@sub',
  twine: '@sub',
  uv: '@sub',
  hatch: '@sub',
  flit: '@sub',
  openssl: '@sub @long1 in: out: key: inkey: CAkey: signkey: passin: passout: config:',
  'ssh-keygen': 'f: y N: C: t: b:',
  ln: 's=symbolic f=force t=target-directory:',
  touch: 'd=date: r=reference: t:',
  mkdir: 'p=parents m=mode:',
  install: 'm=mode: o=owner: g=group: t=target-directory: d=directory',
  truncate: 's=size: r=reference:',
  crontab: 'u=user: r=remove e=edit l=list',
  history: 'c=clear d=delete: w=write a=append',
  base64: 'd=decode w=wrap: i=ignore-garbage',
  export: 'p f n',
  declare: 'p x a A i r f F g l u n t',
  typeset: 'p x a A i r f F g l u n t',
  printenv: '',
};

export interface ProgramSpec {
  subcommands: boolean;
  /** After the subcommand, options belong to it: every word is positional. */
  stopAtSubcommand: boolean;
  longSingleDash: boolean;
  /** alias (letter or long name) → normalized name */
  aliases: Map<string, string>;
  /** normalized names that take a value */
  values: Set<string>;
}

const compiled = new Map<string, ProgramSpec>();
for (const [key, text] of Object.entries(SPECS)) compiled.set(key, compileSpec(text));

function compileSpec(text: string): ProgramSpec {
  const spec: ProgramSpec = { subcommands: false, stopAtSubcommand: false, longSingleDash: false, aliases: new Map(), values: new Set() };
  for (const token of text.split(/\s+/).filter(Boolean)) {
    if (token === '@sub') { spec.subcommands = true; continue; }
    if (token === '@long1') { spec.longSingleDash = true; continue; }
    if (token === '@stop') { spec.stopAtSubcommand = true; continue; }
    const takesValue = token.endsWith(':');
    const body = takesValue ? token.slice(0, -1) : token;
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(eq + 1) : body;
    spec.aliases.set(name, name);
    if (eq >= 0) for (const letter of body.slice(0, eq).split(',')) spec.aliases.set(letter, name);
    if (takesValue) spec.values.add(name);
  }
  return spec;
}

/** The spec of `program`, merged with `program subcommand`'s when there is one. */
export function specFor(program: string, subcommand?: string | null): ProgramSpec | undefined {
  const base = compiled.get(program);
  if (!subcommand) return base;
  const sub = compiled.get(`${program} ${subcommand}`);
  if (!base || !sub) return base;
  return {
    subcommands: false,
    stopAtSubcommand: false,
    longSingleDash: base.longSingleDash,
    aliases: new Map([...base.aliases, ...sub.aliases]),
    values: new Set([...base.values, ...sub.values]),
  };
}

export interface ParsedArgv {
  subcommand: string | null;
  flags: string[];
  options: Record<string, Word>;
  /** Every value of each option, in order (`-F a=@x -F b=@y`). */
  values: Record<string, Word[]>;
  /** Positionals after the subcommand. */
  args: Word[];
  /** For each positional, its index in the words given to {@link parseArgv}. */
  argIndex: number[];
}

/**
 * Splits a program's argument words into subcommand, normalized flags, option values and positionals.
 *
 * @param program normalized program name (selects the spec; unknown programs use generic rules:
 *                `--name[=value]` is a long flag, `-abc` three short flags, `--` ends options).
 * @param words   the words after the program name; `null` words are unknown and count as positionals.
 * @example parseArgv('rm', ['-r', '-f', 'dist']) // {flags: ['recursive', 'force'], args: ['dist'], …}
 */
export function parseArgv(program: string, words: Word[]): ParsedArgv {
  let spec = specFor(program);
  const out: ParsedArgv = { subcommand: null, flags: [], options: {}, values: {}, args: [], argIndex: [] };
  let endOfOptions = false;
  const norm = (name: string) => spec?.aliases.get(name) ?? name;
  const flag = (name: string, value: Word | undefined) => {
    if (!out.flags.includes(name)) out.flags.push(name);
    if (value !== undefined) {
      out.options[name] = value;
      (out.values[name] ??= []).push(value);
    }
  };
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as Word;
    if (w === null || endOfOptions || w === '-' || !w.startsWith('-') || /^-\d+$/.test(w)) {
      if (spec?.subcommands && out.subcommand === null && w !== null && !w.startsWith('-')) {
        out.subcommand = w;
        if (spec.stopAtSubcommand) endOfOptions = true;
        spec = specFor(program, w);
      } else {
        out.args.push(w);
        out.argIndex.push(i);
      }
      continue;
    }
    if (w === '--') { endOfOptions = true; continue; }
    if (w.startsWith('--') || (spec?.longSingleDash && w.length > 2)) {
      const body = w.replace(/^--?/, '');
      const eq = body.indexOf('=');
      const name = norm(eq >= 0 ? body.slice(0, eq) : body);
      // --no-X turns X off; X=false (or none, 0, no) is X off
      if (name.startsWith('no-') && eq < 0) {
        out.flags = out.flags.filter((f) => f !== name.slice(3));
        flag(name, undefined);
        continue;
      }
      if (eq >= 0 && /^(false|none|0|no|off)$/i.test(body.slice(eq + 1)) && !spec?.values.has(name)) {
        out.flags = out.flags.filter((f) => f !== name);
        continue;
      }
      if (eq >= 0) flag(name, body.slice(eq + 1));
      else if (spec?.values.has(name)) { flag(name, i + 1 < words.length ? (words[i + 1] as Word) : null); i++; }
      else flag(name, undefined);
      continue;
    }
    const letters = w.slice(1);
    for (let j = 0; j < letters.length; j++) {
      const name = norm(letters[j] as string);
      if (spec?.values.has(name)) {
        const rest = letters.slice(j + 1);
        if (rest) flag(name, rest);
        else { flag(name, i + 1 < words.length ? (words[i + 1] as Word) : null); i++; }
        break;
      }
      flag(name, undefined);
    }
  }
  return out;
}
