import type { Action, Part } from '../actions/action.js';

/**
 * What the blast-radius limits read from an analysed action: the sizes it sets (replicas, desired
 * counts, node counts, machine types — the feedback-loop signal) and whether it creates resources. Pure; the
 * gateway keeps the counters.
 */

export interface Magnitude {
  /** What is being sized, e.g. `kubectl scale deployment/web -n prod` or `ops.scale_service web`. */
  target: string;
  /** The size asked for. */
  value: number;
  /** The option or argument it came from, e.g. `--replicas`. */
  via: string;
}

/** Options that set a size (normalized names, as the shell analysis gives them). */
const SIZE_OPTIONS = ['replicas', 'desired-capacity', 'desired-count', 'max-size', 'min-size', 'num-nodes', 'max-nodes', 'node-count', 'max', 'count', 'size'];
/** Options that name what is sized, kept in the target. */
const TARGET_OPTIONS = ['namespace', 'context', 'cluster', 'service', 'auto-scaling-group-name', 'instance-id', 'resource-group', 'name', 'region', 'zone', 'project', 'node-pool'];
/** Options that name a machine size: a bigger type is a bigger size. */
const TYPE_OPTIONS = ['instance-type', 'machine-type', 'node-vm-size', 'vm-size', 'node-type', 'cache-node-type', 'db-instance-class'];
const AWS_SIZES = ['nano', 'micro', 'small', 'medium', 'large', 'xlarge'];

/**
 * A machine type's relative size: AWS `m5.2xlarge` → 2^(rank) with `large` = 2^4 and each `Nxlarge`
 * N times `xlarge` (each step roughly doubles the machine); a trailing vCPU count elsewhere
 * (`n2-standard-8`, `Standard_D4s_v3`, `db.r6g.4xlarge` as AWS). Null when it cannot be read.
 */
export function machineSize(type: string): number | null {
  const aws = /^(?:db\.|cache\.)?[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|(\d*)xlarge|metal)$/i.exec(type);
  if (aws !== null) {
    const size = (aws[1] as string).toLowerCase();
    if (size === 'metal') return 2 ** 10;
    if (size.endsWith('xlarge')) return 2 ** 5 * Number(aws[2] || 1);
    return 2 ** AWS_SIZES.indexOf(size);
  }
  const cpus = /^(?:[a-z0-9]+-[a-z]+-(\d{1,3})|standard_[a-z]+(\d{1,3})[a-z_0-9]*)$/i.exec(type);
  if (cpus !== null) return Number(cpus[1] ?? cpus[2]);
  return null;
}

/** Tool argument keys that set a size. */
const SIZE_KEYS = /^(replicas|replica_?count|desired_?(count|capacity)|num_?nodes|node_?count|instances|instance_?count|capacity|max_?size|scale)$/i;
const WHOLE = /^\d{1,9}$/;

/** The sizes an action sets, one per target. */
export function magnitudes(action: Action, parts: readonly Part[]): Magnitude[] {
  const out: Magnitude[] = [];
  for (const p of parts) {
    if (p.kind !== 'shell' || p.program === null) continue;
    const scoped = TARGET_OPTIONS.map((o) => (typeof p.options[o] === 'string' ? ` --${o}=${p.options[o]}` : '')).join('');
    const named = p.args.filter((a): a is string => typeof a === 'string');
    for (const o of SIZE_OPTIONS) {
      const v = p.options[o];
      if (typeof v === 'string' && WHOLE.test(v)) out.push({ target: `${p.program} ${p.subcommand ?? ''} ${named.join(' ')}${scoped}`.replace(/\s+/g, ' ').trim(), value: Number(v), via: `--${o}` });
    }
    for (const o of TYPE_OPTIONS) {
      const v = p.options[o];
      const size = typeof v === 'string' ? machineSize(v) : null;
      if (size !== null) out.push({ target: `${p.program} ${p.subcommand ?? ''} ${named.join(' ')}${scoped}`.replace(/\s+/g, ' ').trim(), value: size, via: `--${o} ${v as string}` });
    }
    // docker service scale web=8, heroku ps:scale web=3, docker compose up --scale web=5
    const pairs = [...named, ...(typeof p.options.scale === 'string' ? [p.options.scale] : [])];
    if (/scale/.test(`${p.subcommand ?? ''} ${named[0] ?? ''} ${p.flags.join(' ')}`)) {
      for (const a of pairs) {
        const m = /^([A-Za-z0-9_.-]+)=(\d{1,9})$/.exec(a);
        if (m !== null) out.push({ target: `${p.program} ${p.subcommand ?? ''} ${m[1]}${scoped}`.replace(/\s+/g, ' ').trim(), value: Number(m[2]), via: a });
      }
    }
  }
  if (action.kind === 'mcp_tool') {
    const names = Object.entries(action.arguments).filter(([k, v]) => typeof v === 'string' && !SIZE_KEYS.test(k)).map(([, v]) => String(v).slice(0, 100)).sort();
    for (const [k, v] of Object.entries(action.arguments)) {
      const n = typeof v === 'number' ? v : typeof v === 'string' && WHOLE.test(v) ? Number(v) : null;
      if (SIZE_KEYS.test(k) && n !== null && Number.isInteger(n) && n >= 0) out.push({ target: `${action.server}.${action.tool} ${names.join(' ')}`.trim(), value: n, via: k });
    }
  }
  return out;
}

const CREATING_SUBCOMMANDS: Record<string, RegExp> = {
  kubectl: /^(create|apply|run|expose)$/,
  helm: /^(install|upgrade)$/,
  terraform: /^apply$/,
  pulumi: /^up$/,
  docker: /^(run|create)$/,
  podman: /^(run|create)$/,
};

/** True when an action creates resources: a cloud `create-*`/`run-instances`, `kubectl create`, SQL CREATE, a `create_*` tool… */
export function createsResources(action: Action, parts: readonly Part[]): boolean {
  for (const p of parts) {
    if (p.kind === 'shell' && p.program !== null) {
      const sub = p.subcommand ?? '';
      if (CREATING_SUBCOMMANDS[p.program]?.test(sub)) return true;
      // aws ec2 run-instances, aws s3api create-bucket, gcloud compute instances create, az vm create
      if (['aws', 'gcloud', 'az', 'doctl', 'hcloud'].includes(p.program) && p.args.some((a) => typeof a === 'string' && /^(create|create-[a-z-]+|run-instances|deploy)$/.test(a))) return true;
    }
    if (p.kind === 'sql' && p.statement.startsWith('create')) return true;
  }
  return action.kind === 'mcp_tool' && /(^|[_.-])(create|provision|launch|deploy)([_A-Z-]|$)/i.test(action.tool);
}
