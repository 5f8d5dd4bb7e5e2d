/**
 * The rules both tiers follow before anything connects: plaintext only on
 * loopback unless asked for, the older `cloud: "host:port"` form, flags that
 * keep the config file's TLS settings, and credentials masked in every log line.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadCloudConfig } from '../../cloud/config.js';
import { startCloudServer } from '../../cloud/server.js';
import { edgeConfigFromFlags } from '../../edge/command.js';
import { loadEdgeConfig } from '../../edge/config.js';
import { brokerConnectOptions } from '../../edge/ingress/broker-security.js';
import { createLogger } from '../../shared/log.js';
import { isLoopback } from '../../shared/tls.js';

async function tempFile(name: string, text: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'splitinfer-security-')), name);
  await writeFile(file, text);
  return file;
}

test('loopback is 127.0.0.0/8, ::1, localhost and unix sockets, in every target form', () => {
  for (const target of ['127.0.0.1:8001', '127.8.9.10:1', 'localhost:8001', '[::1]:8001', '::1', 'dns:///localhost:8001', 'ipv4:127.0.0.1:8001', 'ipv4:127.0.0.1:8001,127.0.0.2:8001', 'ipv6:[::1]:8001,[::1]:8002', 'unix:/run/cloud.sock', '127.0.0.1']) {
    assert.equal(isLoopback(target), true, target);
  }
  for (const target of ['10.0.0.5:8001', '0.0.0.0', '::', 'cloud.example:8001', 'dns:///splitinfer-cloud:8001', '[2001:db8::1]:8001', 'localhost.example:1', 'ipv4:127.0.0.1:8001,10.0.0.5:8001']) {
    assert.equal(isLoopback(target), false, target);
  }
});

test('the edge refuses plaintext to a non-loopback cloud and says how to fix it', () => {
  assert.throws(() => loadEdgeConfig(undefined, { cloud: '10.0.0.5:8001' }), /cloud 10\.0\.0\.5:8001 is not a loopback address.*--cloud-tls-ca FILE.*--cloud-insecure/);
  assert.equal(loadEdgeConfig(undefined, { cloud: { address: '10.0.0.5:8001', insecure: true } }).cloud.insecure, true);
  assert.deepEqual(loadEdgeConfig(undefined, { cloud: { address: '10.0.0.5:8001', tls: {} } }).cloud.tls, { ca: '', cert: '', key: '', serverName: '' });
  assert.equal(loadEdgeConfig().cloud.address, '127.0.0.1:8001');
  assert.throws(() => loadEdgeConfig(undefined, { cloud: { address: '10.0.0.5:8001', insecure: true, tls: {} } }), /choose one/);
});

test("`cloud: \"host:port\"` still works, and --cloud and the TLS flags keep the file's other cloud settings", async () => {
  const legacy = await tempFile('edge.yaml', 'cloud: "127.0.0.1:9001"\n');
  assert.deepEqual(loadEdgeConfig(legacy).cloud, { address: '127.0.0.1:9001', insecure: false, apiKeyFile: '', apiKeyEnv: '' });
  const file = await tempFile('edge.yaml', 'cloud:\n  address: cloud.example:8001\n  tls: { ca: /etc/ca.pem, serverName: cloud.internal }\n  apiKeyFile: /etc/key\n');
  const config = edgeConfigFromFlags({ config: file, cloud: 'cloud2.example:8001', 'cloud-tls-cert': '/etc/dev.pem', 'cloud-tls-key': '/etc/dev.key' });
  assert.deepEqual(config.cloud, {
    address: 'cloud2.example:8001',
    tls: { ca: '/etc/ca.pem', cert: '/etc/dev.pem', key: '/etc/dev.key', serverName: 'cloud.internal' },
    insecure: false,
    apiKeyFile: '/etc/key',
    apiKeyEnv: '',
  });
  assert.equal(edgeConfigFromFlags({ cloud: 'cloud.example:8001', 'cloud-insecure': true }).cloud.insecure, true);
});

test('the cloud tier refuses plaintext on a non-loopback address before loading any model', async () => {
  const log = createLogger('test', 'silent');
  await assert.rejects(startCloudServer(loadCloudConfig(undefined, { host: '0.0.0.0', port: 0 }), log), /refusing plaintext gRPC on 0\.0\.0\.0.*--tls-cert FILE --tls-key FILE.*--insecure/);
  await assert.rejects(startCloudServer(loadCloudConfig(undefined, { tls: { cert: '/etc/cert.pem' } }), log), /tls\.cert and tls\.key go together/);
  await assert.rejects(startCloudServer(loadCloudConfig(undefined, { tls: { clientCa: '/etc/ca.pem' } }), log), /needs the server certificate/);
  await assert.rejects(startCloudServer(loadCloudConfig(undefined, { auth: { mtlsTenants: { cam: 'acme' } } }), log), /set tls\.clientCa/);
  await assert.rejects(startCloudServer(loadCloudConfig(undefined, { auth: { required: true } }), log), /no call could succeed/);
  await assert.rejects(startCloudServer(loadCloudConfig(undefined, { auth: { apiKeys: [{ tenant: 'acme', keyEnv: 'SPLITINFER_TEST_UNSET_KEY' }] } }), log), /SPLITINFER_TEST_UNSET_KEY is not set/);
  assert.throws(() => loadCloudConfig(undefined, { auth: { apiKeys: [{ tenant: 'acme', keyFile: '/a', keyEnv: 'B' }] } }), /apiKeys\/0/);
  assert.equal(loadCloudConfig().metricsHost, '127.0.0.1');
  assert.equal(loadCloudConfig().host, '127.0.0.1');
});

test('credentials in a URL are masked in every log line, in fields and messages alike', () => {
  const lines: string[] = [];
  const log = createLogger('test', 'info', { write: (line: string) => void lines.push(line) });
  log.warn({ broker: 'mqtts://device-1:s3cret@broker.example:8883', nested: { url: 'ws://u:p%40ss@h/mqtt' } }, 'cannot reach mqtt://device-1:s3cret@broker.example:1883 (retrying)');
  assert.equal(lines.length, 1);
  assert.doesNotMatch(lines[0]!, /s3cret|p%40ss/);
  const entry = JSON.parse(lines[0]!) as Record<string, any>;
  assert.equal(entry.broker, 'mqtts://***@broker.example:8883');
  assert.equal(entry.nested.url, 'ws://***@h/mqtt');
  assert.equal(entry.msg, 'cannot reach mqtt://***@broker.example:1883 (retrying)');
});

test('the broker password comes from a file or a variable, never both, and TLS files need an mqtts:// URL', async () => {
  const passwordFile = await tempFile('password', 'from-file\n');
  const broker = { url: 'mqtt://127.0.0.1:1883', username: 'dev', password: '', passwordFile: '', passwordEnv: '' };
  assert.deepEqual(brokerConnectOptions({ ...broker, passwordFile }), { username: 'dev', password: 'from-file' });
  process.env.SPLITINFER_TEST_BROKER_PASSWORD = 'from-env';
  assert.deepEqual(brokerConnectOptions({ ...broker, passwordEnv: 'SPLITINFER_TEST_BROKER_PASSWORD' }), { username: 'dev', password: 'from-env' });
  assert.throws(() => brokerConnectOptions({ ...broker, passwordFile, password: 'inline' }), /both set/);
  assert.throws(() => brokerConnectOptions({ ...broker, url: 'mqtt://dev:pw@10.0.0.5:1883', tls: { ca: '/ca.pem', cert: '', key: '' } }), /mqtt:\/\/\*\*\*@10\.0\.0\.5:1883 does not use TLS — use an mqtts:\/\/ URL/);
});
