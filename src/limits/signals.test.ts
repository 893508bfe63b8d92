import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Action, Part } from '../actions/action.js';
import { analyzeAction, loadParsers } from '../actions/classify.js';
import { createsResources, machineSize, magnitudes } from './signals.js';

const ctx = { cwd: '/work', home: '/home/dev' };
function partsOf(action: Action): Part[] {
  const a = analyzeAction(action, ctx);
  assert.ok(a.ok, JSON.stringify(a));
  return a.parts;
}
const shell = (command: string): Action => ({ kind: 'shell', command, cwd: ctx.cwd });
const sizes = (a: Action) => magnitudes(a, partsOf(a)).map((m) => [m.target, m.value]);

describe('what the limits read from actions', () => {
  before(loadParsers);

  it('reads the sizes an action sets, per target', () => {
    assert.deepEqual(sizes(shell('kubectl scale deployment/api --replicas=8 -n prod')), [['kubectl scale deployment/api --namespace=prod', 8]]);
    assert.deepEqual(sizes(shell('kubectl -n prod scale deployment/api --replicas 16')), [['kubectl scale deployment/api --namespace=prod', 16]]);
    assert.deepEqual(sizes(shell('aws ecs update-service --cluster prod --service web --desired-count 12')).map(([, v]) => v), [12]);
    assert.deepEqual(sizes(shell('docker service scale web=5')), [['docker service web', 5]]);
    assert.deepEqual(sizes({ kind: 'mcp_tool', server: 'k8s', tool: 'scale_deployment', arguments: { name: 'api', replicas: 32 } }), [['k8s.scale_deployment api', 32]]);
    assert.deepEqual(sizes(shell('kubectl get pods -n prod')), []);
  });

  it('reads a growing machine type as a growing size', () => {
    assert.equal(machineSize('m5.large'), 16);
    assert.equal(machineSize('m5.xlarge'), 32);
    assert.equal(machineSize('m5.4xlarge'), 128);
    assert.equal(machineSize('n2-standard-8'), 8);
    assert.equal(machineSize('Standard_D4s_v3'), 4);
    assert.equal(machineSize('banana'), null);
    const [m] = magnitudes(shell('aws ec2 modify-instance-attribute --instance-id i-0abc --instance-type m5.2xlarge'), partsOf(shell('aws ec2 modify-instance-attribute --instance-id i-0abc --instance-type m5.2xlarge')));
    assert.equal(m?.value, 64);
    assert.match(m?.target ?? '', /i-0abc/);
  });

  it('tells actions that create resources from those that do not', () => {
    for (const c of ['kubectl create namespace x', 'kubectl apply -f deploy.yaml', 'aws ec2 run-instances --image-id ami-1', 'gcloud compute instances create vm1', 'terraform apply -auto-approve', 'docker run -d nginx']) {
      assert.equal(createsResources(shell(c), partsOf(shell(c))), true, c);
    }
    for (const c of ['kubectl get pods', 'aws ec2 describe-instances', 'terraform plan', 'docker ps']) assert.equal(createsResources(shell(c), partsOf(shell(c))), false, c);
    const sql: Action = { kind: 'sql', sql: 'CREATE TABLE t (id int)', dialect: 'postgres' };
    assert.equal(createsResources(sql, partsOf(sql)), true);
    assert.equal(createsResources({ kind: 'mcp_tool', server: 'cloud', tool: 'create_bucket', arguments: {} }, []), true);
    assert.equal(createsResources({ kind: 'mcp_tool', server: 'cloud', tool: 'list_buckets', arguments: {} }, []), false);
  });
});
