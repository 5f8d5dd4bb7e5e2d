/**
 * The agent's MQTT link over TLS against a real mosquitto with a TLS
 * listener that wants a client certificate and a password: the agent
 * verifies the broker against its CA, presents the device's certificate,
 * reads its password from a file, answers requests, and never writes the
 * password to its log, even when it sits in the broker URL.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { loadEdgeConfig } from '../../edge/config.js';
import { brokerConnectOptions } from '../../edge/ingress/broker-security.js';
import { MqttIngress, type RequestHandler } from '../../edge/ingress/mqtt-ingress.js';
import { createLogger } from '../../shared/log.js';
import { AgentRequester, mosquittoMissing, startMosquitto, type TestBroker } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';
import { makeTestPki, opensslMissing, type TestPki } from '../helpers/tls.js';

/** Answers every request with an empty result: the transport is what is under test. */
const emptyAnswers: RequestHandler = { handle: async (request) => ({ id: request.id, results: {}, placement: {}, timings: {} }) };
const devicePassword = 'dev1ce-pa55word';
const requesterPassword = 'requester-pa55word';

describe('MQTT over TLS with a client certificate and a password', { skip: mosquittoMissing ?? opensslMissing }, () => {
  let pki: TestPki;
  let broker: TestBroker;
  let passwordFile: string;

  const state = tempStateDir();

  before(async () => {
    pki = makeTestPki('device-1');
    passwordFile = path.join(pki.dir, 'broker-password');
    writeFileSync(passwordFile, `${devicePassword}\n`);
    broker = await startMosquitto(5, {
      tls: { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey, requireCertificate: true },
      passwords: { 'device-1': devicePassword, requester: requesterPassword },
    });
  });

  after(async () => {
    await broker?.stop();
    pki?.remove();
    state.remove();
  });

  const brokerSettings = (overrides: Record<string, unknown>) => ({ url: broker.url, protocolVersion: 5, username: 'device-1', ...overrides });
  const requesterOptions = () => ({ ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }) as const;

  async function serve(deviceId: string, broker: Record<string, unknown>) {
    const lines: string[] = [];
    const log = createLogger('test-mqtt', 'debug', { write: (line: string) => void lines.push(line) });
    const ingress = await MqttIngress.start(loadEdgeConfig(undefined, { deviceId, broker, stateDir: state.dir }), emptyAnswers, log);
    return { ingress, lines };
  }

  test('the agent connects over mqtts:// with its certificate and a password from a file, and answers', async (t) => {
    const { ingress, lines } = await serve('tls-1', brokerSettings({ passwordFile, tls: requesterOptions() }));
    t.after(() => ingress.close());
    const requester = await AgentRequester.connect(broker, 'tls-1', [], {
      ...brokerConnectOptions({ url: broker.url, username: 'requester', password: requesterPassword, passwordFile: '', passwordEnv: '', tls: requesterOptions() }),
    });
    t.after(() => requester.close());
    const { reply } = await requester.ask({ id: 'over-tls', inputs: { text: 'hello' } });
    assert.equal(reply.id, 'over-tls');
    assert.ok(lines.some((l) => l.includes('mqtt ingress serving')));
    assert.ok(!lines.some((l) => l.includes(devicePassword)), 'the password is never logged');
  });

  test('a password in the broker URL is masked in every log line', async (t) => {
    const url = broker.url.replace('mqtts://', `mqtts://device-1:${devicePassword}@`);
    const { ingress, lines } = await serve('tls-2', brokerSettings({ url, username: '', tls: requesterOptions() }));
    t.after(() => ingress.close());
    const serving = lines.find((l) => l.includes('mqtt ingress serving'));
    assert.ok(serving?.includes(`"broker":"mqtts://***@127.0.0.1:${new URL(broker.url).port}"`), serving);
    assert.ok(!lines.some((l) => l.includes(devicePassword)), 'the password is never logged');
  });

  test('a broker certificate from another CA is refused', async () => {
    const options = brokerConnectOptions({ url: broker.url, username: 'device-1', password: devicePassword, passwordFile: '', passwordEnv: '', tls: { ...requesterOptions(), ca: pki.otherCa } });
    await assert.rejects(mqtt.connectAsync(broker.url, { ...options, reconnectPeriod: 0, connectTimeout: 5_000 }, false), /self[- ]signed certificate|unable to verify|certificate/i);
  });

  test('a client without a certificate is refused by the broker', async () => {
    const options = brokerConnectOptions({ url: broker.url, username: 'device-1', password: devicePassword, passwordFile: '', passwordEnv: '', tls: { ca: pki.ca, cert: '', key: '' } });
    await assert.rejects(mqtt.connectAsync(broker.url, { ...options, reconnectPeriod: 0, connectTimeout: 5_000 }, false));
  });
});
