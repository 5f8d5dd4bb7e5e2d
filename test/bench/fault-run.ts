/**
 * Fault injection for the delivery guarantee (README "Delivery"): real
 * mosquitto with persistence, the real cloud tier and the real agent as child
 * processes, all on loopback. A requester with a persistent session publishes
 * numbered QoS 1 requests at a steady rate (text, audio and image in turn)
 * while faults hit the system one after another; then every id's answers are
 * counted. An id answered 0 times (or only refused with RESOURCE_EXHAUSTED)
 * is lost; an id the agent answered more than once is duplicated. A copy the
 * broker sent again with the DUP flag (a retransmission to the requester
 * after a broker restart, which a QoS 1 subscriber may see whatever the
 * publisher does) is counted apart; the requester subscribes at QoS 2, so
 * there should be none.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { WriteStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { freeLoopbackPort, startCloudChild, type CloudChild } from '../../edge/local-stack.js';
import { startEdgeChild, type EdgeChild } from '../helpers/edge-child.js';
import { readFixture } from '../helpers/inference.js';
import type { MqttClient } from 'mqtt';
import { connectClient, decodeResponse, startMosquitto, type AgentReply, type TestBroker } from '../helpers/mqtt.js';

export type FaultKind = 'agent-sigkill' | 'agent-sigterm' | 'broker-restart' | 'cloud-kill';

export interface FaultRunOptions {
  requests: number;
  ratePerS: number;
  /** Spread evenly over the sending time, in this order, each at least `faultGapMs` after the one before was over. */
  faults: FaultKind[];
  faultGapMs: number;
  maxConcurrentRequests: number;
  deadlineMs: number;
  /** How long to wait for the last answers once everything was sent and every fault is over. */
  settleMs: number;
  log?: WriteStream;
}

export interface FaultRunResult {
  requests: number;
  answeredOnce: number;
  lost: number;
  duplicated: number;
  /** Extra copies the broker redelivered with the DUP flag (QoS 1 to the requester), not extra answers. */
  brokerRedeliveries: number;
  /** Answers by outcome: ok, or the error code of the request or of a modality. */
  outcomes: Record<string, number>;
  faults: { kind: FaultKind; atMs: number; recoveredMs: number }[];
  maxLatencyMs: number;
  p50LatencyMs: number;
  lostIds: string[];
  duplicatedIds: string[];
  durationMs: number;
  setup: { ratePerS: number; maxConcurrentRequests: number; deadlineMs: number; broker: string };
}

const inputs: Record<string, string | Uint8Array>[] = [
  { text: 'I forgot my password for the learning portal' },
  { audio: readFixture('audio', 'speech-en.wav') },
  { image: readFixture('ocr', 'small-text.png') },
];

export async function runFaults(options: FaultRunOptions): Promise<FaultRunResult> {
  const work = mkdtempSync(path.join(tmpdir(), 'splitinfer-faults-'));
  const brokerPort = await freeLoopbackPort();
  const cloudPort = await freeLoopbackPort();
  const deviceId = `faults-${process.pid}`;
  const replyTopic = `faults/${process.pid}/replies`;
  const startBroker = () => startMosquitto(5, { persistenceDir: work, port: brokerPort });
  const startCloud = () =>
    startCloudChild({
      port: cloudPort,
      extraArgs: ['--threads', '1'],
      spawn: (command, args, env) => {
        const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
        for (const stream of [child.stdout!, child.stderr!]) {
          if (options.log) stream.pipe(options.log, { end: false });
          else stream.resume();
        }
        return child;
      },
    });
  let broker: TestBroker = await startBroker();
  let cloud: CloudChild = await startCloud();
  const startAgent = () =>
    startEdgeChild({
      broker,
      deviceId,
      cloud: cloud.address,
      stateDir: path.join(work, 'agent-state'),
      config: { limits: { maxConcurrentRequests: options.maxConcurrentRequests }, delivery: { drainTimeoutMs: 5_000 } },
      log: options.log,
    });
  let agent: EdgeChild | undefined;
  let requester: MqttClient | undefined;
  try {
    agent = await startAgent();
    requester = await connectClient(broker, {
      clientId: `faults-requester-${process.pid}`,
      clean: false,
      reconnectPeriod: 200,
      properties: { sessionExpiryInterval: 3_600 },
    });
    const sentAt = new Map<string, number>();
    const answers = new Map<string, { at: number; reply: AgentReply; dup: boolean }[]>();
    requester.on('message', (_topic, _payload, packet) => {
      const id = packet.properties?.correlationData?.toString() ?? '';
      const reply = decodeResponse({ topic: _topic, payload: _payload, packet });
      if (reply.final === false) return;
      answers.set(id, [...(answers.get(id) ?? []), { at: performance.now(), reply, dup: packet.dup }]);
    });
    // QoS 2 end to end: the broker delivers each answer to the requester once too, across its own restarts.
    await requester.subscribeAsync(replyTopic, { qos: 2 });

    const started = performance.now();
    const sendMs = (options.requests / options.ratePerS) * 1000;
    const faultLog: FaultRunResult['faults'] = [];
    const faultsDone = (async () => {
      let lastOver = started;
      for (const [k, kind] of options.faults.entries()) {
        const at = Math.max(started + ((k + 1) / (options.faults.length + 1)) * sendMs, lastOver + options.faultGapMs);
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
        const atMs = Math.round(performance.now() - started);
        if (kind === 'agent-sigkill' || kind === 'agent-sigterm') {
          await agent.kill(kind === 'agent-sigkill' ? 'SIGKILL' : 'SIGTERM');
          agent = await startAgent();
        } else if (kind === 'broker-restart') {
          await broker.stop();
          broker = await startBroker();
        } else {
          process.kill(cloud.pid, 'SIGKILL');
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          cloud = await startCloud();
        }
        lastOver = performance.now();
        faultLog.push({ kind, atMs, recoveredMs: Math.round(lastOver - started) });
      }
    })();

    const publishes: Promise<unknown>[] = [];
    for (let i = 0; i < options.requests; i++) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + (i * 1000) / options.ratePerS - performance.now())));
      const id = `f-${i}`;
      const body = Buffer.from(JSON.stringify({ id, inputs: base64(inputs[i % inputs.length]!), deadlineMs: options.deadlineMs }));
      sentAt.set(id, performance.now());
      const properties = { responseTopic: replyTopic, correlationData: Buffer.from(id), contentType: 'application/json' };
      publishes.push(requester.publishAsync(`splitinfer/v1/${deviceId}/req`, body, { qos: 1, properties }));
    }
    await faultsDone;
    await Promise.allSettled(publishes);
    const settleUntil = performance.now() + options.settleMs;
    while (performance.now() < settleUntil && [...sentAt.keys()].some((id) => !answers.has(id))) await new Promise((resolve) => setTimeout(resolve, 200));
    // Late extra copies would show up within a moment.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const durationMs = Math.round(performance.now() - started);

    return tally(options, sentAt, answers, faultLog, durationMs);
  } finally {
    await requester?.endAsync(true);
    await agent?.kill('SIGTERM');
    await cloud.stop();
    await broker.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

function tally(options: FaultRunOptions, sentAt: Map<string, number>, answers: Map<string, { at: number; reply: AgentReply; dup: boolean }[]>, faults: FaultRunResult['faults'], durationMs: number): FaultRunResult {
  const outcomes: Record<string, number> = {};
  const latencies: number[] = [];
  const lostIds: string[] = [];
  const duplicatedIds: string[] = [];
  let brokerRedeliveries = 0;
  for (const [id, sent] of sentAt) {
    const got = answers.get(id) ?? [];
    const fresh = got.filter((a) => !a.dup);
    brokerRedeliveries += got.length - fresh.length;
    const first = got[0];
    const codes = first ? Object.values(first.reply.errors ?? {}).map((e) => e.code) : [];
    if (!first || codes.includes('RESOURCE_EXHAUSTED')) lostIds.push(id);
    if (fresh.length > 1) duplicatedIds.push(id);
    if (first) {
      latencies.push(first.at - sent);
      const outcome = codes.length === 0 ? 'ok' : [...new Set(codes)].join('+');
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
  }
  latencies.sort((a, b) => a - b);
  return {
    requests: options.requests,
    answeredOnce: [...sentAt.keys()].filter((id) => !lostIds.includes(id) && !duplicatedIds.includes(id)).length,
    lost: lostIds.length,
    duplicated: duplicatedIds.length,
    brokerRedeliveries,
    outcomes,
    faults,
    maxLatencyMs: Math.round(latencies.at(-1) ?? 0),
    p50LatencyMs: Math.round(latencies[Math.floor(latencies.length / 2)] ?? 0),
    lostIds,
    duplicatedIds,
    durationMs,
    setup: { ratePerS: options.ratePerS, maxConcurrentRequests: options.maxConcurrentRequests, deadlineMs: options.deadlineMs, broker: 'mosquitto (MQTT 5, persistence on)' },
  };
}

function base64(input: Record<string, string | Uint8Array>): Record<string, string> {
  return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, typeof v === 'string' ? v : Buffer.from(v).toString('base64')]));
}

export function faultMarkdown(result: FaultRunResult): string {
  const rows = result.faults.map((f) => `| ${f.kind} | ${f.atMs} | ${f.recoveredMs - f.atMs} |`).join('\n');
  const outcomes = Object.entries(result.outcomes).map(([k, v]) => `${k}: ${v}`).join(', ');
  return `# Delivery under faults (\`npm run bench:faults\`)

${result.requests} numbered QoS 1 requests (text, audio, image in turn) at ${result.setup.ratePerS}/s, deadlineMs ${result.setup.deadlineMs},
answered at QoS 2 (delivery.answerQos) to a requester subscribed at QoS 2,
agent limits.maxConcurrentRequests ${result.setup.maxConcurrentRequests}, ${result.setup.broker}, the cloud tier and the agent as
child processes on loopback. Run took ${(result.durationMs / 1000).toFixed(1)} s.

| requests | answered once | lost | answered twice | broker DUP redeliveries | max latency (ms) | p50 latency (ms) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| ${result.requests} | ${result.answeredOnce} | ${result.lost} | ${result.duplicated} | ${result.brokerRedeliveries} | ${result.maxLatencyMs} | ${result.p50LatencyMs} |

Outcomes of the first answers: ${outcomes}.
${result.lostIds.length ? `Lost ids: ${result.lostIds.join(', ')}.\n` : ''}${result.duplicatedIds.length ? `Ids answered twice: ${result.duplicatedIds.join(', ')}.\n` : ''}
| fault | at (ms) | back after (ms) |
| --- | ---: | ---: |
${rows}
`;
}
