/**
 * Watching a running device, end to end: a real mosquitto (MQTT 5), the real
 * cloud tier and the real agent with its metrics endpoint on. Requests name
 * their trace in the `traceparent` user property; the answer returns it, and
 * the agent's and the cloud's log lines for the request carry it. The
 * agent's /metrics, scraped over HTTP, moves with the requests: tasks by
 * modality, site and outcome, latencies, local model runs, the link
 * estimates, the circuit, the backlog and the journal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { loadEdgeConfig, type EdgeConfig } from '../../edge/config.js';
import { startEdgeService, type EdgeService } from '../../edge/service.js';
import { createLogger } from '../../shared/log.js';
import { parseTraceparent } from '../../shared/trace-context.js';
import { startTestCloud } from '../helpers/cloud.js';
import { readFixture } from '../helpers/inference.js';
import { has, scrape, valueOf, type Sample } from '../helpers/metrics-text.js';
import { connectClient, decodeResponse, MessageCollector, mosquittoMissing, startMosquitto, type AgentReply, type ReceivedMessage, type TestBroker } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';

const invoice = Buffer.from(readFixture('ocr', 'invoice.png')).toString('base64');

/** A logger whose JSON lines the test reads back. */
function capturedLogger(name: string): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger(name, 'info', { write: (line: string) => lines.push(JSON.parse(line)) }), lines };
}

describe('observing an agent over MQTT 5', { skip: mosquittoMissing }, () => {
  let broker: TestBroker;
  let cloud: Awaited<ReturnType<typeof startTestCloud>>;
  let edge: EdgeService;
  let config: EdgeConfig;
  let client: MqttClient;
  let replies: MessageCollector;
  let metricsUrl: string;
  const edgeLog = capturedLogger('edge');
  const cloudLog = capturedLogger('cloud');
  const state = tempStateDir();
  const deviceId = `observe-${process.pid}`;
  const replyTopic = `test/${deviceId}/replies`;
  let sequence = 0;

  /** Publishes a request with these user properties; resolves with its answer. */
  async function ask(body: Record<string, unknown>, userProperties?: Record<string, string>): Promise<{ reply: AgentReply; message: ReceivedMessage }> {
    const token = `obs-${++sequence}`;
    await client.publishAsync(`splitinfer/v1/${deviceId}/req`, JSON.stringify(body), {
      qos: 1,
      properties: { responseTopic: replyTopic, correlationData: Buffer.from(token), contentType: 'application/json', ...(userProperties ? { userProperties } : {}) },
    });
    const message = await replies.waitFor((m) => m.packet.properties?.correlationData?.toString() === token, 60_000, `answer to ${token}`);
    return { reply: decodeResponse(message), message };
  }

  const answeredTrace = (message: ReceivedMessage) => message.packet.properties?.userProperties?.traceparent as string | undefined;

  before(async () => {
    broker = await startMosquitto(5);
    cloud = await startTestCloud({ models: ['image-ocr', 'text-intent'] }, cloudLog.log);
    config = loadEdgeConfig(undefined, {
      deviceId,
      broker: { url: broker.url, protocolVersion: 5, keepaliveS: 5 },
      cloud: cloud.address,
      stateDir: state.dir,
      metricsPort: 0,
      telemetryIntervalS: 60,
    });
    edge = await startEdgeService(config, edgeLog.log);
    metricsUrl = `http://127.0.0.1:${edge.metricsPort}/metrics`;
    client = await connectClient(broker);
    replies = await MessageCollector.subscribe(client, replyTopic);
  });

  after(async () => {
    await client?.endAsync(true);
    await edge?.close();
    await cloud?.server.drain(5_000);
    await broker?.stop();
    state.remove();
  });

  test('the metrics endpoint is off by default and binds loopback when on', () => {
    const defaults = loadEdgeConfig();
    assert.equal(defaults.metricsPort, -1);
    assert.equal(defaults.metricsHost, '127.0.0.1');
    assert.ok(edge.metricsPort > 0);
  });

  test("a request's traceparent comes back in its answer and is in the agent's and the cloud's log lines", async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const { reply, message } = await ask({ id: 'traced', inputs: { image: invoice } }, { traceparent });
    assert.equal(reply.errors, undefined, JSON.stringify(reply.errors));
    assert.equal(reply.placement.image?.ran, 'cloud');
    assert.equal(answeredTrace(message), traceparent);
    const agentLine = edgeLog.lines.find((l) => l.msg === 'request' && l.id === 'traced');
    assert.equal(agentLine?.traceparent, traceparent);
    assert.equal(edgeLog.lines.find((l) => l.msg === 'request answered' && l.id === 'traced')?.traceparent, traceparent);
    const cloudLine = cloudLog.lines.find((l) => l.msg === 'infer' && typeof l.id === 'string' && l.id.startsWith('traced/image'));
    assert.equal(cloudLine?.traceparent, traceparent, `cloud lines: ${JSON.stringify(cloudLog.lines.filter((l) => l.msg === 'infer'))}`);
  });

  test('a request with an invalid or no traceparent starts a new trace, logged on both tiers and answered', async () => {
    for (const [id, properties] of [['bad-trace', { traceparent: 'not-a-trace' }], ['no-trace', undefined]] as const) {
      const { message } = await ask({ id, inputs: { image: invoice } }, properties);
      const started = answeredTrace(message);
      const context = parseTraceparent(started);
      assert.ok(context, `answered traceparent ${started}`);
      assert.equal(edgeLog.lines.find((l) => l.msg === 'request' && l.id === id)?.traceparent, started);
      const cloudLine = cloudLog.lines.find((l) => l.msg === 'infer' && typeof l.id === 'string' && l.id.startsWith(`${id}/image`));
      assert.equal(cloudLine?.traceparent, started);
    }
  });

  test("the agent's metrics move with its requests", async () => {
    const before = await scrape(metricsUrl);
    const task = (modality: string, placement: string, outcome = 'ok') => ({ modality, placement, outcome });
    await ask({ id: 'm-text', inputs: { text: 'I want my money back for this broken kettle' } });
    await ask({ id: 'm-image', inputs: { image: invoice } });
    // A small offload measures the round trip.
    await ask({ id: 'm-text-cloud', inputs: { text: 'where is my parcel' }, prefer: { text: 'cloud' } });
    await ask({ id: 'm-empty', inputs: {} });
    let now = await scrape(metricsUrl);
    const moved = (name: string, labels: Record<string, string> = {}) => valueOf(now, name, labels) - valueOf(before, name, labels);
    // An answer counts once the broker has acknowledged it (QoS 2: PUBCOMP), which may come after the requester already holds it.
    for (const deadline = Date.now() + 5_000; moved('splitinfer_edge_ingress_messages_total', { event: 'answered' }) < 4 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      now = await scrape(metricsUrl);
    }

    assert.equal(moved('splitinfer_edge_tasks_total', task('text', 'edge')), 1);
    assert.equal(moved('splitinfer_edge_tasks_total', task('image', 'cloud')), 1);
    assert.equal(moved('splitinfer_edge_tasks_total', task('text', 'cloud')), 1);
    assert.equal(moved('splitinfer_edge_ingress_messages_total', { event: 'received' }), 4);
    assert.equal(moved('splitinfer_edge_ingress_messages_total', { event: 'invalid' }), 1, 'the request with no inputs');
    assert.equal(moved('splitinfer_edge_ingress_messages_total', { event: 'answered' }), 4);
    assert.equal(moved('splitinfer_edge_request_duration_seconds_count'), 3);
    assert.ok(moved('splitinfer_edge_request_duration_seconds_sum') > 0);
    assert.equal(moved('splitinfer_edge_task_duration_seconds_count', { modality: 'image', placement: 'cloud' }), 1);
    assert.equal(moved('splitinfer_edge_local_run_seconds_count', { model: 'text-intent', variant: config.modalities.text.localVariant }), 1);
    assert.equal(valueOf(now, 'splitinfer_edge_cloud_circuit_state', { state: 'closed' }), 1);
    assert.equal(valueOf(now, 'splitinfer_edge_cloud_circuit_state', { state: 'open' }), 0);
    assert.ok(valueOf(now, 'splitinfer_edge_cloud_rtt_seconds') > 0, 'an RTT estimate');
    assert.ok(valueOf(now, 'splitinfer_edge_uplink_bytes_per_second') > 0, 'an uplink estimate');
    assert.equal(valueOf(now, 'splitinfer_edge_requests_in_flight'), 0);
    assert.ok(valueOf(now, 'splitinfer_edge_journal_entries') >= 4);
    assert.ok(moved('splitinfer_edge_journal_bytes') > 0);
    assert.ok(now.every((s: Sample) => s.labels.device === deviceId), 'every series names the device');
    assert.ok(has(now, 'process_resident_memory_bytes'), 'process metrics');
  });

  test('the label sets stay bounded: request ids and reply topics never become labels', async () => {
    const labelNames = new Set((await scrape(metricsUrl)).flatMap((s) => Object.keys(s.labels)));
    for (const name of labelNames) assert.ok(['device', 'modality', 'placement', 'outcome', 'model', 'variant', 'state', 'le', 'quantile', 'type', 'event', 'space', 'version', 'kind', 'major', 'minor', 'patch'].includes(name), `label ${name}`);
  });

  test('/metrics is the only path', async () => {
    const response = await fetch(metricsUrl.replace('/metrics', '/'));
    assert.equal(response.status, 404);
    assert.match(await response.text(), /GET \/metrics/);
  });

  test('a port already taken fails the start with a message naming the setting', async () => {
    const other = tempStateDir();
    try {
      const taken = loadEdgeConfig(undefined, { ...config, deviceId: `${deviceId}-b`, stateDir: other.dir, metricsPort: edge.metricsPort });
      await assert.rejects(startEdgeService(taken, createLogger('edge-b', 'silent')), /cannot serve metrics on 127\.0\.0\.1:\d+: .*EADDRINUSE.* — pick another metricsPort/);
    } finally {
      other.remove();
    }
  });

  test('with the cloud gone, the circuit gauge leaves closed and the tasks count their fallback', async () => {
    await cloud.server.drain(5_000);
    const { reply } = await ask({ id: 'm-down', inputs: { image: invoice } });
    assert.equal(reply.placement.image?.ran, 'edge');
    const deadline = Date.now() + 30_000;
    let samples = await scrape(metricsUrl);
    while (valueOf(samples, 'splitinfer_edge_cloud_circuit_state', { state: 'closed' }) === 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      samples = await scrape(metricsUrl);
    }
    assert.equal(valueOf(samples, 'splitinfer_edge_cloud_circuit_state', { state: 'closed' }), 0);
    assert.equal(valueOf(samples, 'splitinfer_edge_cloud_circuit_state'), 1, 'exactly one state is current');
    assert.equal(valueOf(samples, 'splitinfer_edge_tasks_total', { modality: 'image', placement: 'edge' }), 1);
  });
});
