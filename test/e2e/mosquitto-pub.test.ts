/**
 * A third-party MQTT 5 client gets its answer: the exact mosquitto_pub /
 * mosquitto_sub commands the README shows, against a running agent.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { freeLoopbackPort } from '../../edge/local-stack.js';
import { startEdgeService, type EdgeService } from '../../edge/service.js';
import { createLogger } from '../../shared/log.js';
import { findProgram, mosquittoMissing, startMosquitto, type TestBroker } from '../helpers/mqtt.js';
import { tempStateDir } from '../helpers/state-dir.js';

const deviceId = `cli-${process.pid}`;
const state = tempStateDir();
let broker: TestBroker;
let edge: EdgeService;

before(async () => {
  if (mosquittoMissing) return;
  broker = await startMosquitto(5);
  // No cloud tier: text runs on the device, and an unreachable cloud must not keep the agent from answering.
  const config = loadEdgeConfig(undefined, { deviceId, broker: { url: broker.url, protocolVersion: 5 }, cloud: `127.0.0.1:${await freeLoopbackPort()}`, stateDir: state.dir });
  edge = await startEdgeService(config, createLogger('e2e', process.env.SPLITINFER_LOG_LEVEL ?? 'silent'));
});

after(async () => {
  await edge?.close();
  await broker?.stop();
  state.remove();
});

/** Runs a program to its end; rejects with its output when it fails. */
function run(program: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(findProgram(program)!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${program} exited with ${code}: ${stderr}${stdout}`))));
  });
}

test('mosquitto_pub -V mqttv5 with response-topic and correlation-data gets its answer', { skip: mosquittoMissing }, async () => {
  const port = new URL(broker.url).port;
  const replyTopic = `clients/${deviceId}/replies`;
  // A durable subscription made first (-E exits right after SUBACK) holds the answer until mosquitto_sub reads it:
  // no race between subscribing and publishing, and no reliance on when mosquitto_sub flushes its output.
  const sub = ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-t', replyTopic, '-q', '1', '-c', '-i', `sub-${deviceId}`, '-x', '60'];
  await run('mosquitto_sub', [...sub, '-E']);
  await run('mosquitto_pub', [
    '-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-q', '1',
    '-t', `splitinfer/v1/${deviceId}/req`,
    '-D', 'PUBLISH', 'response-topic', replyTopic,
    '-D', 'PUBLISH', 'correlation-data', 'order-42',
    '-D', 'PUBLISH', 'content-type', 'application/json',
    '-m', '{"id":"q1","inputs":{"text":"Where is my order?"}}',
  ]);
  const output = await run('mosquitto_sub', [...sub, '-C', '1', '-W', '20', '-F', '%C %D %p']);
  const [contentType, correlation, ...payload] = output.trim().split(' ');
  assert.equal(contentType, 'application/json', output);
  assert.equal(correlation, 'order-42');
  const reply = JSON.parse(payload.join(' ')) as { id: string; results: Record<string, { intent?: string }>; placement: Record<string, { ran: string }>; errors?: unknown };
  assert.equal(reply.id, 'q1');
  assert.equal(reply.errors, undefined, JSON.stringify(reply.errors));
  assert.equal(reply.results.text?.intent, 'order_status');
  assert.equal(reply.placement.text?.ran, 'edge');
});
