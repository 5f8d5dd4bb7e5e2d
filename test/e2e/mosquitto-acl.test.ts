/**
 * The broker configuration the project ships (deploy/mosquitto/), run as
 * shipped on real mosquitto with TLS, passwords and the ACL add-client.sh
 * writes: a requester gets its answers and nobody else's, a device cannot
 * read or write another device's topics, and a client cannot take over a
 * device's session by naming its client id.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { loadEdgeConfig } from '../../edge/config.js';
import { startEdgeService, type EdgeService } from '../../edge/service.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';
import { connectClient, mosquittoMissing, startMosquitto, type TestBroker } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';
import { makeTestPki, opensslMissing, type TestPki } from '../helpers/tls.js';

const log = createLogger('acl-test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const shipped = path.join(packageRoot, 'deploy', 'mosquitto');
const clients = { 'device-1': 'pw-d1', 'device-2': 'pw-d2', app1: 'pw-a1', app2: 'pw-a2' } as const;
const settle = () => new Promise((resolve) => setTimeout(resolve, 400));

describe('deploy/mosquitto: the shipped broker config and ACL', { skip: mosquittoMissing ?? opensslMissing }, () => {
  let dir: string;
  let pki: TestPki;
  let broker: TestBroker;
  let edge: EdgeService;
  const state = tempStateDir();
  const open: MqttClient[] = [];

  const connect = async (name: keyof typeof clients, clientId?: string) => {
    const client = await connectClient(broker, { username: name, password: clients[name], ca: readFileSync(pki.ca), ...(clientId ? { clientId } : {}) });
    open.push(client);
    return client;
  };
  const received = (client: MqttClient) => {
    const topics: string[] = [];
    client.on('message', (topic) => topics.push(topic));
    return topics;
  };

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-acl-'));
    copyFileSync(path.join(shipped, 'acl'), path.join(dir, 'acl'));
    const addClient = path.join(shipped, 'add-client.sh');
    for (const [name, password] of Object.entries(clients)) execFileSync(addClient, ['--dir', dir, name.startsWith('device') ? 'device' : 'requester', name, password]);
    pki = makeTestPki();
    const conf = readFileSync(path.join(shipped, 'mosquitto.conf'), 'utf8');
    broker = await startMosquitto(5, {
      tls: { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey, requireCertificate: false },
      // The shipped file, with this run's folder, port and certificates; mosquitto started as root drops to this user.
      config: (port) =>
        conf
          .replace('listener 8883', `listener ${port} 127.0.0.1`)
          .replace('/etc/mosquitto/splitinfer/certs/ca.crt', pki.ca)
          .replace('/etc/mosquitto/splitinfer/certs/broker.crt', pki.serverCert)
          .replace('/etc/mosquitto/splitinfer/certs/broker.key', pki.serverKey)
          .replaceAll('/etc/mosquitto/splitinfer', dir)
          .replace('persistence_location /var/lib/mosquitto/', `persistence_location ${dir}/`) + `user ${userInfo().username}\n`,
    });
    const config = loadEdgeConfig(undefined, {
      deviceId: 'device-1',
      broker: { url: broker.url, protocolVersion: 5, username: 'device-1', password: clients['device-1'], tls: { ca: pki.ca } },
      cloud: '127.0.0.1:9',
      replyPrefixes: ['replies/'],
      stateDir: state.dir,
    });
    edge = await startEdgeService(config, log);
  });

  after(async () => {
    for (const client of open) await client.endAsync(true);
    await edge?.close();
    await broker?.stop();
    pki?.remove();
    state.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a requester gets its answer under replies/<its name>/; another requester sees neither the request nor the answer', async () => {
    const app2 = await connect('app2');
    const seenByApp2 = received(app2);
    await app2.subscribeAsync(['replies/#', 'splitinfer/v1/device-1/req', 'splitinfer/v1/device-1/res'], { qos: 1 });
    const app1 = await connect('app1');
    await app1.subscribeAsync('replies/app1/#', { qos: 1 });
    const answer = new Promise<Buffer>((resolve, reject) => {
      app1.on('message', (topic, payload) => topic === 'replies/app1/r1' && resolve(payload));
      setTimeout(() => reject(new Error('no answer on replies/app1/r1 within 30 s')), 30_000).unref();
    });
    await app1.publishAsync('splitinfer/v1/device-1/req', JSON.stringify({ id: 'acl-1', inputs: { text: 'Where is my order?' } }), {
      qos: 1,
      properties: { responseTopic: 'replies/app1/r1', correlationData: Buffer.from('c1'), contentType: 'application/json' },
    });
    assert.equal((JSON.parse((await answer).toString()) as { id: string }).id, 'acl-1');
    await settle();
    assert.deepEqual(seenByApp2, []);
  });

  test("a device can neither read nor write another device's topics, nor speak for its status", async () => {
    const device2 = await connect('device-2');
    const seen = received(device2);
    await device2.subscribeAsync(['splitinfer/v1/device-1/req', 'splitinfer/v1/device-1/status', 'replies/#'], { qos: 1 });
    const before = edge.ingress.stats().received;
    // mosquitto answers a refused MQTT 5 publish with a "not authorized" PUBACK; either way nothing is delivered.
    await device2.publishAsync('splitinfer/v1/device-1/req', JSON.stringify({ id: 'forged', inputs: { text: 'hi' } }), { qos: 1 }).catch(() => undefined);
    await device2.publishAsync('splitinfer/v1/device-1/status', 'offline', { qos: 1, retain: true }).catch(() => undefined);
    await settle();
    assert.equal(edge.ingress.stats().received, before, 'the forged request never reached device-1');
    assert.deepEqual(seen, [], 'nothing of device-1 or of any requester was delivered to device-2');
    const app1 = await connect('app1', 'status-watcher');
    const status = new Promise<string>((resolve, reject) => {
      app1.on('message', (_topic, payload) => resolve(payload.toString()));
      setTimeout(() => reject(new Error('no retained status within 30 s')), 30_000).unref();
    });
    await app1.subscribeAsync('splitinfer/v1/device-1/status', { qos: 1 });
    assert.equal(await status, 'online', 'the retained status is still the one device-1 published');
  });

  test("naming a device's client id takes nothing over: the broker uses the username as the client id", async () => {
    let disconnects = 0;
    edge.ingress.client.on('close', () => disconnects++);
    await connect('app2', 'splitinfer-edge-device-1');
    await settle();
    assert.equal(disconnects, 0);
    assert.equal(edge.ingress.client.connected, true);
  });

  test('add-client.sh refuses a name twice, a name that is not a topic level, and an unknown kind', () => {
    const run = (...args: string[]) => {
      try {
        execFileSync(path.join(shipped, 'add-client.sh'), ['--dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        return '';
      } catch (err) {
        return String((err as { stderr: Buffer }).stderr);
      }
    };
    assert.match(run('device', 'device-1', 'x'), /device-1 is already in/);
    assert.match(run('device', 'a/b', 'x'), /must be letters, digits/);
    assert.match(run('robot', 'r1', 'x'), /the kind is 'device' or 'requester'/);
  });
});
