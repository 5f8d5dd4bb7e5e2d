/**
 * The agent's MQTT socket sends without delay. The agent acknowledges a QoS 1
 * request at once and publishes the response a few ms later; with Nagle's
 * algorithm on, the response waits for the broker's ACK of that PUBACK, which
 * the broker's kernel delays by ~40 ms (nothing to piggyback it on), so every
 * answer came 40 ms late however fast the models were (bench:edge measures
 * the round trip; this checks the property that removes the wait, on the
 * first connection and on the new socket of every reconnect).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { MqttIngress, type RequestHandler } from '../../edge/ingress/mqtt-ingress.js';
import { createLogger } from '../../shared/log.js';
import { AgentRequester, startAedes, type TestBroker } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';

const log = createLogger('test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');

/** Answers every request with an empty result: the ingress is what is under test. */
const emptyAnswers: RequestHandler = { handle: async (request) => ({ id: request.id, results: {}, placement: {}, timings: {} }) };

describe('agent MQTT socket', () => {
  // Sockets whose latest setNoDelay call turned Nagle off: node has no getter for TCP_NODELAY.
  const noDelay = new WeakSet<net.Socket>();
  const setNoDelay = net.Socket.prototype.setNoDelay;
  let broker: TestBroker;
  let ingress: MqttIngress;
  let requester: AgentRequester;
  const state = tempStateDir();

  before(async () => {
    net.Socket.prototype.setNoDelay = function (this: net.Socket, enable = true) {
      if (enable) noDelay.add(this);
      else noDelay.delete(this);
      return setNoDelay.call(this, enable);
    };
    broker = await startAedes();
    const deviceId = `nodelay-${process.pid}`;
    ingress = await MqttIngress.start(loadEdgeConfig(undefined, { deviceId, broker: { url: broker.url, protocolVersion: broker.protocolVersion }, stateDir: state.dir }), emptyAnswers, log);
    requester = await AgentRequester.connect(broker, deviceId);
  });

  after(async () => {
    net.Socket.prototype.setNoDelay = setNoDelay;
    await requester?.close();
    await ingress?.close();
    await broker?.stop();
    state.remove();
  });

  test('has Nagle off once the agent serves', async () => {
    assert.ok(ingress.client.stream instanceof net.Socket, 'an mqtt:// broker is reached over a TCP socket');
    assert.ok(noDelay.has(ingress.client.stream), 'TCP_NODELAY is not set on the agent\'s socket to the broker');
    const { reply } = await requester.ask({ id: 'first', inputs: { text: 'hello' } });
    assert.equal(reply.id, 'first');
  });

  test('has Nagle off again on the new socket after a reconnect', async () => {
    const dropped = ingress.client.stream as net.Socket;
    const reconnected = new Promise<void>((resolve) => ingress.client.once('connect', () => resolve()));
    dropped.destroy();
    await reconnected;
    assert.notEqual(ingress.client.stream, dropped, 'mqtt.js opens a new socket on reconnect');
    assert.ok(noDelay.has(ingress.client.stream as net.Socket), 'TCP_NODELAY is not set on the socket of the reconnected session');
    const { reply } = await requester.ask({ id: 'after-reconnect', inputs: { text: 'hello' } });
    assert.equal(reply.id, 'after-reconnect');
  });
});
