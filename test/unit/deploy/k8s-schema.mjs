// Validates Kubernetes objects (a JSON array on stdin) against the Kubernetes OpenAPI schemas that the
// kubernetes-models package ships (ESM only, so the jest test runs this file with node). Prints a JSON
// array of problems, one per object that fails or whose kind is not known here.
import { Namespace, ConfigMap, Secret, Service, PersistentVolumeClaim } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';

const MODELS = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const problems = [];
for (const o of objects) {
  const id = `${o.kind}/${o.metadata?.name}`;
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (Model === undefined) {
    problems.push(`${id}: no schema here for ${o.apiVersion} ${o.kind}`);
    continue;
  }
  try {
    new Model(o).validate();
  } catch (err) {
    problems.push(`${id}: ${err.message}`);
  }
}
process.stdout.write(JSON.stringify(problems));
