/**
 * The Kubernetes manifests as `kubectl kustomize` renders each overlay, and
 * the KServe InferenceService: every object passes the Kubernetes OpenAPI
 * schema of its kind (kubernetes-models; the ServiceMonitor the Prometheus
 * Operator's), the probes ask grpc.health.v1 on the port the cloud's own
 * config loader says it serves, the grace period covers preStop plus the
 * drain, and the Services, HPA, PDB and ServiceMonitor select what they mean to.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { validate as validateContainer } from 'kubernetes-models/_schemas/IoK8sApiCoreV1Container';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { cloudConfigFromArgs } from '../../cloud/command.js';
import type { CloudConfig } from '../../cloud/config.js';
import { packageRoot } from '../../shared/paths.js';
import { instructions, parseDockerfile } from '../helpers/dockerfile.js';
import { findProgram } from '../helpers/mqtt.js';

const kubectl = findProgram('kubectl');
const kubectlMissing = kubectl ? undefined : "kubectl is not installed (apt-get install kubernetes-client: Debian's kubectl 1.20 renders these overlays)";
const version = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** A rendered object as YAML gives it; `spec` is absent on ConfigMaps and Secrets, which the schemas check. */
type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: any; [key: string]: any };

/** One schema per kind the manifests may hold; anything else fails the test, so nothing goes unchecked. */
const models: Record<string, { validate(object: K8sObject): void }> = {
  'apps/v1/Deployment': { validate: (o) => new Deployment(o).validate() },
  'v1/Service': { validate: (o) => new Service(o).validate() },
  'v1/ConfigMap': { validate: (o) => new ConfigMap(o).validate() },
  'v1/Secret': { validate: (o) => new Secret(o).validate() },
  'autoscaling/v2/HorizontalPodAutoscaler': { validate: (o) => new HorizontalPodAutoscaler(o).validate() },
  'policy/v1/PodDisruptionBudget': { validate: (o) => new PodDisruptionBudget(o).validate() },
  'monitoring.coreos.com/v1/ServiceMonitor': { validate: (o) => new ServiceMonitor(o).validate() },
};

function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text).map((doc) => {
    if (doc.errors.length) throw doc.errors[0];
    return doc.toJS() as K8sObject;
  });
}

function render(overlay: string): K8sObject[] {
  return parseObjects(execFileSync(kubectl!, ['kustomize', path.join(packageRoot, 'deploy/kubernetes/overlays', overlay)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
}

const selects = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
  Object.entries(selector).every(([key, value]) => labels?.[key] === value);

/** The sleep a preStop exec hook takes, in seconds (0 without one). */
function preStopSeconds(container: IContainer): number {
  const command = container.lifecycle?.preStop?.exec?.command;
  if (!command) return 0;
  assert.equal(command[0], 'sleep', `preStop runs ${command.join(' ')}: expected sleep N`);
  return Number(command[1]);
}

/** Every probe asks grpc.health.v1 (service "" — the whole server, cloud/health.ts) on `port`. */
function assertGrpcProbes(container: IContainer, port: number): void {
  const probes = { startupProbe: container.startupProbe, readinessProbe: container.readinessProbe, livenessProbe: container.livenessProbe };
  for (const [name, probe] of Object.entries(probes) as [string, IProbe | undefined][]) {
    assert.ok(probe?.grpc, `${name} is a native gRPC probe`);
    assert.equal(probe.grpc.port, port, `${name} asks the gRPC port`);
    assert.ok(!probe.grpc.service, `${name} asks service '' (the server), which SERVING means every model loaded`);
  }
}

/** The cloud config the container runs with: its args, with the --config file read from the ConfigMap mounted there. */
function containerConfig(objects: K8sObject[], deployment: K8sObject, container: IContainer, scratch: string): CloudConfig {
  const args = [...(container.args ?? [])];
  const at = args.indexOf('--config');
  if (at >= 0) {
    const mount = container.volumeMounts?.find((m) => m.mountPath === args[at + 1]);
    assert.ok(mount, `--config ${args[at + 1]} is a mounted file`);
    const volume = deployment.spec.template.spec.volumes.find((v: { name: string }) => v.name === mount.name);
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === volume?.configMap?.name);
    assert.ok(configMap, `volume ${mount.name} is a ConfigMap of this kustomization`);
    const file = path.join(scratch, `${configMap.metadata.name}.yaml`);
    writeFileSync(file, configMap.data[mount.subPath!]);
    args[at + 1] = file;
  }
  return cloudConfigFromArgs(args)!;
}

describe('Kubernetes overlays rendered by kubectl kustomize', { skip: kubectlMissing }, () => {
  let scratch: string;
  before(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-k8s-'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  for (const overlay of ['cpu', 'gpu']) {
    describe(`overlays/${overlay}`, () => {
      let objects: K8sObject[];
      let deployment: K8sObject;
      let container: IContainer;
      let config: CloudConfig;
      const one = (kind: string, name?: string) => {
        const found = objects.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
        assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''}`);
        return found[0]!;
      };
      before(() => {
        objects = render(overlay);
        deployment = one('Deployment');
        container = deployment.spec.template.spec.containers[0];
        config = containerConfig(objects, deployment, container, scratch);
      });

      test('every object passes its kind’s schema', () => {
        assert.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret', 'Service', 'Service', 'ServiceMonitor']);
        for (const object of objects) {
          const model = models[`${object.apiVersion}/${object.kind}`];
          assert.ok(model, `no schema for ${object.apiVersion} ${object.kind}`);
          model.validate(object);
        }
      });

      test('probes ask grpc.health.v1 on the port the cloud config serves, reachable from the kubelet', () => {
        const grpcPort = container.ports?.find((p) => p.name === 'grpc')?.containerPort;
        assert.equal(grpcPort, config.port);
        assert.equal(config.host, '0.0.0.0');
        assert.ok(config.insecure && !config.tls.cert, 'plaintext h2c in the pod: the kubelet’s gRPC probes cannot speak TLS');
        assertGrpcProbes(container, config.port);
        assert.equal(container.ports?.find((p) => p.name === 'metrics')?.containerPort, config.metricsPort);
        assert.equal(config.metricsHost, '0.0.0.0');
      });

      test("runs as the image's own non-root user", () => {
        const dockerfile = overlay === 'gpu' ? 'deploy/cloud/Dockerfile.cuda' : 'deploy/cloud/Dockerfile';
        const user = instructions(parseDockerfile(readFileSync(path.join(packageRoot, dockerfile), 'utf8')).at(-1)!, 'USER')[0]!.text;
        const pod = deployment.spec.template.spec.securityContext;
        assert.equal(pod.runAsNonRoot, true);
        assert.equal(String(pod.runAsUser), user, `runAsUser is ${dockerfile}'s USER`);
        assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
      });

      test('terminationGracePeriodSeconds covers preStop, the drain and the final close', () => {
        const grace = deployment.spec.template.spec.terminationGracePeriodSeconds as number;
        const preStop = preStopSeconds(container);
        assert.ok(preStop > 0, 'a preStop sleep lets endpoints and DNS drop the pod before the drain starts');
        // cloud/server.ts: drain waits up to drainTimeoutMs, then gives the gRPC shutdown 1 s before forcing it.
        const needed = preStop + config.drainTimeoutMs / 1000 + 1;
        assert.ok(grace >= needed, `grace ${grace} s < preStop ${preStop} s + drain ${config.drainTimeoutMs / 1000} s + 1 s close`);
      });

      test('a headless Service for client-side round robin and a ClusterIP Service, both selecting the pods by the gRPC port', () => {
        const podLabels = deployment.spec.template.metadata.labels;
        const headless = one('Service', 'splitinfer-cloud-headless');
        const cluster = one('Service', 'splitinfer-cloud');
        assert.equal(headless.spec.clusterIP, 'None');
        assert.notEqual(cluster.spec.clusterIP, 'None');
        for (const service of [headless, cluster]) {
          assert.ok(selects(service.spec.selector, podLabels), `${service.metadata.name} selects the pods`);
          const grpc = service.spec.ports.find((p: { name: string }) => p.name === 'grpc');
          assert.equal(grpc?.port, config.port);
          assert.ok(container.ports?.some((p) => p.name === grpc.targetPort), `${service.metadata.name} targets a named container port`);
        }
        const monitor = one('ServiceMonitor');
        assert.ok(selects(monitor.spec.selector.matchLabels, cluster.metadata.labels));
        assert.ok(!selects(monitor.spec.selector.matchLabels, headless.metadata.labels) || !headless.spec.ports.some((p: { name: string }) => p.name === 'metrics'), 'pods are scraped once, through one Service');
        for (const endpoint of monitor.spec.endpoints) assert.ok(cluster.spec.ports.some((p: { name: string }) => p.name === endpoint.port), `ServiceMonitor port ${endpoint.port} is a port of the Service`);
      });

      test('the HPA scales the Deployment on CPU and queue time; the PDB never lets a drain take every replica', () => {
        const hpa = one('HorizontalPodAutoscaler');
        assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
        assert.ok(hpa.spec.metrics.some((m: K8sObject) => m.type === 'Resource' && m.resource.name === 'cpu'));
        assert.ok(hpa.spec.metrics.some((m: K8sObject) => m.type === 'Pods' && /queue/.test(m.pods.metric.name)));
        const pdb = one('PodDisruptionBudget');
        assert.ok(selects(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels));
        assert.ok(pdb.spec.maxUnavailable < hpa.spec.minReplicas, `maxUnavailable ${pdb.spec.maxUnavailable} < minReplicas ${hpa.spec.minReplicas}`);
      });

      test('API keys come from a mounted Secret whose values are marked placeholders', () => {
        assert.ok(config.auth.required);
        assert.ok(config.auth.apiKeys.length > 0);
        const secret = one('Secret');
        for (const key of config.auth.apiKeys) {
          const mount = container.volumeMounts?.find((m) => key.keyFile?.startsWith(`${m.mountPath}/`));
          assert.ok(mount, `${key.keyFile} lies under a mounted volume`);
          const volume = deployment.spec.template.spec.volumes.find((v: { name: string }) => v.name === mount.name);
          assert.equal(volume?.secret?.secretName, secret.metadata.name);
          const value = secret.stringData?.[path.basename(key.keyFile!)];
          assert.match(value ?? '', /^REPLACE-ME/, `the Secret holds ${path.basename(key.keyFile!)}, marked as a placeholder`);
        }
      });

      test(overlay === 'gpu' ? 'asks for one NVIDIA GPU and runs the CUDA image CUDA first' : 'runs the CPU image on CPU, asking for no GPU', () => {
        const gpus = container.resources?.limits?.['nvidia.com/gpu'];
        if (overlay === 'gpu') {
          assert.equal(gpus, 1);
          assert.equal(container.image, `splitinfer-cloud:${version}-cuda`);
          assert.deepEqual(config.providers, ['cuda', 'cpu']);
        } else {
          assert.equal(gpus, undefined);
          assert.equal(container.image, `splitinfer-cloud:${version}`);
          assert.deepEqual(config.providers, ['cpu']);
        }
      });
    });
  }
});

/**
 * The InferenceService's shape, from KServe's v1beta1 API
 * (kserve/kserve pkg/apis/serving/v1beta1: InferenceService, PredictorSpec =
 * PodSpec fields + ComponentExtensionSpec; metadata.name must match the
 * ISVC name regex; scaleMetric is cpu|memory|concurrency|rps). The predictor's
 * containers are checked against the Kubernetes Container schema.
 */
function checkInferenceService(object: K8sObject): void {
  assert.equal(object.apiVersion, 'serving.kserve.io/v1beta1');
  assert.equal(object.kind, 'InferenceService');
  assert.match(object.metadata.name, /^[a-z]([-a-z0-9]*[a-z0-9])?$/);
  const predictor = object.spec?.predictor;
  assert.ok(predictor, 'spec.predictor');
  const extension = ['minReplicas', 'maxReplicas', 'scaleTarget', 'scaleMetric', 'containerConcurrency', 'timeout', 'canaryTrafficPercent', 'logger', 'batcher', 'labels', 'annotations', 'deploymentStrategy'];
  const podSpec = ['containers', 'volumes', 'securityContext', 'serviceAccountName', 'nodeSelector', 'tolerations', 'affinity', 'terminationGracePeriodSeconds', 'imagePullSecrets'];
  for (const key of Object.keys(predictor)) assert.ok([...extension, ...podSpec].includes(key), `spec.predictor.${key} is not a PredictorSpec field used by a custom predictor`);
  assert.ok(['cpu', 'memory', 'concurrency', 'rps'].includes(predictor.scaleMetric ?? 'cpu'));
  assert.ok((predictor.minReplicas ?? 1) <= predictor.maxReplicas, 'minReplicas ≤ maxReplicas');
  assert.equal(predictor.containers?.length, 1, 'one container: the custom predictor');
  const container = predictor.containers[0] as IContainer;
  assert.ok(validateContainer(container), JSON.stringify((validateContainer as unknown as { errors: unknown }).errors));
  assert.equal(container.name, 'kserve-container', 'KServe names the predictor container kserve-container');
}

describe('deploy/kserve/inference-service.yaml', () => {
  const [isvc] = parseObjects(readFileSync(path.join(packageRoot, 'deploy/kserve/inference-service.yaml'), 'utf8'));

  test('is a v1beta1 InferenceService with one custom predictor container', () => {
    checkInferenceService(isvc!);
  });

  test('exposes the gRPC port as h2c and probes grpc.health.v1 on it, as the cloud serves it', () => {
    const container = isvc!.spec.predictor.containers[0] as IContainer;
    const config = cloudConfigFromArgs(container.args ?? [])!;
    assert.deepEqual(container.ports, [{ name: 'h2c', containerPort: config.port, protocol: 'TCP' }], 'one port (Knative allows one), named h2c');
    assert.equal(config.host, '0.0.0.0');
    assert.ok(config.insecure, 'h2c is plaintext HTTP/2');
    assertGrpcProbes(container, config.port);
    assert.equal(container.image, `splitinfer-cloud:${version}`);
  });

  test('the shape check refuses what KServe would', () => {
    const broken = structuredClone(isvc!);
    broken.spec.predictor.scaleMetrics = 'cpu';
    assert.throws(() => checkInferenceService(broken), /spec\.predictor\.scaleMetrics is not a PredictorSpec field/);
    const badName = structuredClone(isvc!);
    badName.metadata.name = 'Splitinfer';
    assert.throws(() => checkInferenceService(badName));
  });
});
