/**
 * deploy/compose.yaml, the whole stack on one machine, read without Docker:
 * every file it mounts or builds from is in the repository (or is one the
 * observability work ships), each service's command takes the flags and
 * config its splitinfer command or program really reads, ports agree across
 * services, and the broker the stack starts enforces the fleet's ACL — shown
 * by starting mosquitto from the same files, mapped as the volumes map them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { cloudConfigFromArgs } from '../../cloud/command.js';
import { edgeConfigFromFlags, edgeFlags } from '../../edge/command.js';
import { packageRoot } from '../../shared/paths.js';
import { commandModule, instructions, parseCopy, parseDockerfile, reachableModules } from '../helpers/dockerfile.js';
import { connectClient, mosquittoMissing, startMosquitto, type TestBroker } from '../helpers/mqtt.js';

const deployDir = path.join(packageRoot, 'deploy');
/** What the observability work (Prometheus config and alerts, Grafana dashboards and provisioning) adds under deploy/. */
const providedByObservability = ['deploy/prometheus/prometheus.yml', 'deploy/prometheus/alerts.yml', 'deploy/grafana/'];

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: string[] | Record<string, { condition: string }>;
}

const compose = parse(readFileSync(path.join(deployDir, 'compose.yaml'), 'utf8')) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
const services = compose.services;

/** A bind mount's source, relative to the repository root; undefined for a named volume. */
function bindSource(volume: string): string | undefined {
  const source = volume.split(':')[0]!;
  return source.startsWith('.') ? path.relative(packageRoot, path.resolve(deployDir, source)) : undefined;
}

/** Where a path inside a service's container comes from: the repository file or folder, or `volume:NAME/rest`. */
function hostPathOf(service: ComposeService, containerPath: string): string {
  const mounts = (service.volumes ?? []).map((v) => v.split(':')).sort((a, b) => b[1]!.length - a[1]!.length);
  const mount = mounts.find(([, target]) => containerPath === target || containerPath.startsWith(`${target}/`));
  assert.ok(mount, `${containerPath} is not inside any volume of the service`);
  const rest = containerPath.slice(mount[1]!.length);
  const source = bindSource(mount.join(':'));
  return source === undefined ? `volume:${mount[0]}${rest}` : path.posix.join(source, rest);
}

const inRepoOrProvided = (file: string) =>
  existsSync(path.join(packageRoot, file)) || providedByObservability.some((provided) => file === provided.replace(/\/$/, '') || file.startsWith(provided) || provided.startsWith(`${file}/`));

/** `HOST:PORT:CONTAINER` → the container port published on the host's loopback. */
function publishedPorts(service: ComposeService): number[] {
  return (service.ports ?? []).map((spec) => {
    const [host, hostPort, containerPort] = spec.split(':');
    assert.equal(host, '127.0.0.1', `${spec}: only loopback reaches the stack from the host`);
    assert.equal(hostPort, containerPort);
    return Number(containerPort);
  });
}

/** mosquitto.conf directives, `name value`, comments dropped. */
function mosquittoDirectives(file: string): Map<string, string> {
  const lines = readFileSync(path.join(packageRoot, file), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  return new Map(lines.map((l) => [l.split(/\s+/)[0]!, l.slice(l.indexOf(' ') + 1).trim()]));
}

const cloudConfig = cloudConfigFromArgs(services.cloud!.command!)!;
const edgeArgs = parseArgs({ args: services.edge!.command!, options: edgeFlags }).values;
const edgeConfigFile = hostPathOf(services.edge!, edgeArgs.config!);
const edgeConfig = edgeConfigFromFlags({ ...edgeArgs, config: path.join(packageRoot, edgeConfigFile) });
const broker = services.mosquitto!;
const brokerConfigFile = hostPathOf(broker, broker.command![broker.command!.indexOf('-c') + 1]!);
const brokerConfig = mosquittoDirectives(brokerConfigFile);
/** The add-client.sh calls of the setup service: kind, name, and the folder they write. */
const setupCommand = services['mosquitto-setup']!.command!.join(' ');
const clients = [...setupCommand.matchAll(/add-client\.sh --dir (\S+) (device|requester) (\S+)/g)].map((m) => ({ dir: m[1]!, kind: m[2]!, name: m[3]! }));

describe('deploy/compose.yaml', () => {
  test('holds the whole stack: broker, cloud, Redis, Prometheus, Grafana and one agent, on pinned images', () => {
    assert.deepEqual(Object.keys(services).sort(), ['cloud', 'edge', 'grafana', 'mosquitto', 'mosquitto-setup', 'prometheus', 'redis']);
    for (const [name, service] of Object.entries(services)) {
      assert.ok(service.image || service.build, `${name} has an image`);
      if (service.image) assert.match(service.image, /:[\w.-]+$/, `${name}: a pinned tag`);
      assert.doesNotMatch(service.image ?? '', /:latest$/, `${name}: not latest`);
    }
  });

  test('every file it mounts or builds from is in the repository, or comes with the observability work', () => {
    const missing: string[] = [];
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = bindSource(volume);
        if (source === undefined) assert.ok(volume.split(':')[0]! in compose.volumes, `${name}: named volume ${volume} is declared`);
        else if (!inRepoOrProvided(source)) missing.push(`${name}: ${source}`);
      }
      if (service.build) {
        const context = path.resolve(deployDir, service.build.context);
        assert.equal(context, packageRoot, 'the image builds from the repository root');
        assert.ok(existsSync(path.join(context, service.build.dockerfile)), `${service.build.dockerfile} exists`);
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(inRepoOrProvided(hostPathOf(services.prometheus!, '/etc/prometheus/prometheus.yml')), 'Prometheus reads deploy/prometheus/prometheus.yml');
    assert.equal(hostPathOf(services.grafana!, '/etc/grafana/provisioning'), 'deploy/grafana/provisioning');
  });

  test('the cloud runs with real flags, plaintext on the stack network, its health check on its port', () => {
    assert.equal(cloudConfig.host, '0.0.0.0');
    assert.ok(cloudConfig.insecure && !cloudConfig.tls.cert);
    assert.deepEqual(publishedPorts(services.cloud!), [cloudConfig.port]);
    const check = services.cloud!.healthcheck!.test!;
    assert.deepEqual(check.slice(0, 4), ['CMD', 'node', 'dist/shared/cli.js', 'health']);
    assert.equal(check[check.indexOf('--address') + 1], `127.0.0.1:${cloudConfig.port}`);
    assert.ok(!check.some((a) => a.startsWith('--tls')), 'plaintext, as the cloud serves');
  });

  test('the agent runs from the cloud image, which carries every folder its command imports', () => {
    const agent = services.edge!;
    assert.equal(agent.image, services.cloud!.image);
    assert.deepEqual(agent.entrypoint!.slice(0, 3), ['node', 'dist/shared/cli.js', 'edge']);
    assert.ok(agent.healthcheck?.disable, "the image's cloud health check does not apply to an agent");
    const build = parseDockerfile(readFileSync(path.join(packageRoot, services.cloud!.build!.dockerfile), 'utf8')).find((s) => s.name === 'build')!;
    const copied = instructions(build, 'COPY').flatMap((c) => parseCopy(c.text).sources);
    const folders = new Set([...reachableModules([commandModule('edge')])].map((f) => f.split('/')[0]!));
    for (const folder of folders) assert.ok(copied.includes(folder), `the agent imports from ${folder}/, which the image's build stage does not copy`);
  });

  test("the agent's config reaches the broker and the cloud by their service names, with the credentials the stack gives it", () => {
    const brokerUrl = new URL(edgeConfig.broker.url);
    assert.equal(brokerUrl.hostname, 'mosquitto');
    assert.equal(Number(brokerUrl.port), Number(brokerConfig.get('listener')));
    assert.deepEqual(publishedPorts(broker), [Number(brokerConfig.get('listener'))]);
    const device = clients.find((c) => c.kind === 'device');
    assert.equal(device?.name, edgeConfig.deviceId);
    assert.equal(edgeConfig.broker.username, edgeConfig.deviceId, 'the ACL names a device by its username');
    assert.ok(services.edge!.environment?.[edgeConfig.broker.passwordEnv], `the agent gets ${edgeConfig.broker.passwordEnv}`);
    assert.deepEqual(edgeConfig.replyPrefixes, ['replies/'], "the ACL lets a device answer only under replies/");
    assert.equal(edgeConfig.cloud.address, `dns:///cloud:${cloudConfig.port}`);
    assert.ok(edgeConfig.cloud.insecure);
    assert.match(hostPathOf(services.edge!, edgeConfig.stateDir), /^volume:agent-state/, 'the journal outlives the container');
  });

  test('the broker reads the password file and ACL the setup service writes, from the fleet files', () => {
    const setup = services['mosquitto-setup']!;
    for (const file of [brokerConfig.get('password_file')!, brokerConfig.get('acl_file')!]) {
      const written = hostPathOf(setup, file);
      assert.equal(hostPathOf(broker, file), written, `${file}: the broker's volume is the one setup writes`);
      assert.ok(clients.every((c) => file.startsWith(`${c.dir}/`)), `add-client.sh writes ${file}`);
    }
    assert.match(setupCommand, new RegExp(`sh ${hostPathOfInverse(setup, 'deploy/mosquitto/add-client.sh')} `), 'runs the fleet script deploy/mosquitto/add-client.sh');
    assert.equal(brokerConfig.get('allow_anonymous'), 'false');
    assert.equal(brokerConfig.get('use_username_as_clientid'), 'true');
  });

  test('Prometheus scrapes the cloud and the agent where the stack serves their metrics', { skip: existsSync(path.join(deployDir, 'prometheus/prometheus.yml')) ? undefined : 'deploy/prometheus/prometheus.yml comes with the observability work' }, () => {
    const scrape = parse(readFileSync(path.join(deployDir, 'prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const targets = scrape.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    assert.ok(targets.includes(`cloud:${cloudConfig.metricsPort}`), `cloud:${cloudConfig.metricsPort} in ${targets.join(', ')}`);
    for (const target of targets) assert.ok(target.split(':')[0]! in services, `${target} names a service of the stack`);
  });
});

/** The container path a repository file is mounted at in `service`. */
function hostPathOfInverse(service: ComposeService, repoFile: string): string {
  for (const volume of service.volumes ?? []) {
    const source = bindSource(volume);
    if (source !== undefined && (repoFile === source || repoFile.startsWith(`${source}/`))) return path.posix.join(volume.split(':')[1]!, repoFile.slice(source.length));
  }
  assert.fail(`${repoFile} is not mounted in the service`);
}

describe("the compose stack's broker, started from its files", { skip: mosquittoMissing }, () => {
  let dir: string;
  let broker: TestBroker;
  const passwords: Record<string, string> = { device: 'device-password', requester: 'app-password' };
  const requester = clients.find((c) => c.kind === 'requester')!.name;

  before(async () => {
    // The setup service's steps, into a folder standing in for the broker-auth volume.
    dir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-compose-broker-'));
    const auth = path.join(dir, 'auth');
    mkdirSync(auth);
    copyFileSync(path.join(deployDir, 'mosquitto/acl'), path.join(auth, 'acl'));
    for (const client of clients) execFileSync('sh', [path.join(deployDir, 'mosquitto/add-client.sh'), '--dir', auth, client.kind, client.name, passwords[client.kind]!]);
    // The stack's mosquitto.conf, each container path replaced by where it lies here.
    const conf = readFileSync(path.join(packageRoot, brokerConfigFile), 'utf8');
    broker = await startMosquitto(5, {
      config: (port) =>
        `${conf
          .replace(/^listener \d+$/m, `listener ${port} 127.0.0.1`)
          .replaceAll(clients[0]!.dir, auth)
          .replace(/^persistence true$/m, 'persistence false')}\nuser ${os.userInfo().username}\n`,
    });
  });

  after(async () => {
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const connect = (username: string, password: string) => connectClient(broker, { username, password, clientId: username });

  test('the agent signs in as its device with the password the stack gives it; a wrong one is refused', async () => {
    const agent = await connect(edgeConfig.deviceId, passwords.device!);
    await agent.endAsync();
    await assert.rejects(connect(edgeConfig.deviceId, 'wrong'), /Not authorized|Bad User Name or Password/i);
  });

  test("the ACL gives the device its own requests only, and the requester's request reaches it", async () => {
    const agent = await connect(edgeConfig.deviceId, passwords.device!);
    const app = await connect(requester, passwords.requester!);
    try {
      await agent.subscribeAsync([`splitinfer/v1/${edgeConfig.deviceId}/req`, 'splitinfer/v1/device-2/req'], { qos: 1 });
      const received: string[] = [];
      const ownArrived = new Promise<void>((resolve) =>
        agent.on('message', (topic) => {
          received.push(topic);
          if (topic.includes(`/${edgeConfig.deviceId}/`)) resolve();
        }),
      );
      // One publisher, QoS 1: the broker delivers in order, so device-2's request would arrive first if the ACL let it.
      await app.publishAsync('splitinfer/v1/device-2/req', 'not yours', { qos: 1 });
      await app.publishAsync(`splitinfer/v1/${edgeConfig.deviceId}/req`, 'hello', { qos: 1 });
      await ownArrived;
      assert.deepEqual(received, [`splitinfer/v1/${edgeConfig.deviceId}/req`]);
    } finally {
      await Promise.all([agent.endAsync(), app.endAsync()]);
    }
  });
});
