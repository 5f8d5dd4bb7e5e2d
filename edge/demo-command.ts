import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger } from '../shared/log.js';
import { packageRoot } from '../shared/paths.js';
import { loadEdgeConfig } from './config.js';
import { deviceTopics } from './ingress/topics.js';
import { startCloudChild, startEmbeddedBroker } from './local-stack.js';
import type { AgentResponse, Modality } from './request.js';
import { startEdgeService } from './service.js';

const help = `usage: splitinfer demo [--broker URL] [--cloud HOST:PORT]

Runs the whole system on this machine and sends it real requests over MQTT:
an embedded MQTT broker (aedes, MQTT 3.1.1) on a free loopback port (or
--broker), the cloud tier as a child process (or --cloud), and an edge agent.
Publishes text in zh/en/ja, a spoken WAV, an image with printed text, a photo
to embed (the heavy encoder in the cloud, then quality fast on the edge's INT8
encoder), a video answered chunk by chunk and a mixed text + image + audio
request; prints each answer, where each modality
ran and why, and the latency. Exits 0 when every request was answered without errors.`;

const sample = (...parts: string[]) => readFile(path.join(packageRoot, 'models', 'samples', ...parts));

interface DemoRequest {
  label: string;
  inputs: () => Promise<Record<string, unknown>>;
  /** Request fields beside `inputs` (task, quality, prefer). */
  options?: Record<string, unknown>;
}

const requests: DemoRequest[] = [
  ...[
    ['zh', '我的订单什么时候发货？'],
    ['en', 'I forgot my password for the learning portal'],
    ['ja', '診察の予約をキャンセルしたいです'],
  ].map(([lang, text]) => ({ label: `text (${lang}) "${text}"`, inputs: async () => ({ text }) })),
  { label: 'audio speech-en.wav (8.4 s of speech)', inputs: async () => ({ audio: await sample('audio', 'speech-en.wav') }) },
  { label: 'image invoice.png (printed text)', inputs: async () => ({ image: await sample('ocr', 'invoice.png') }) },
  {
    label: 'image shipped-zh.jpg as an embedding (task encode: the heavy encoder in the cloud)',
    inputs: async () => ({ image: await sample('ocr', 'shipped-zh.jpg') }),
    options: { task: { image: 'encode' } },
  },
  {
    label: 'image shipped-zh.jpg as an embedding, quality fast, prefer the edge (the light INT8 encoder)',
    inputs: async () => ({ image: await sample('ocr', 'shipped-zh.jpg') }),
    options: { task: { image: 'encode' }, quality: { image: 'fast' }, prefer: { image: 'edge' } },
  },
  {
    label: 'video two-scenes.mp4 (8 s, a cut at 4 s), answered chunk by chunk',
    inputs: async () => ({ video: await sample('video', 'two-scenes.mp4') }),
  },
  {
    label: 'mixed: text + image invoice.png + audio speech-en.wav',
    inputs: async () => ({ text: 'Where is my order?', image: await sample('ocr', 'invoice.png'), audio: await sample('audio', 'speech-en.wav') }),
  },
];

type Result = Record<string, unknown>;
const show: Record<Modality, (r: Result) => string> = {
  text: (r) => `intent ${String(r.intent)} (confidence ${Number(r.confidence).toFixed(2)})`,
  audio: (r) => `speech at ${(r.segments as { startMs: number; endMs: number }[]).map((s) => `${s.startMs}-${s.endMs} ms`).join(', ') || 'none'}`,
  image: (r) =>
    Array.isArray(r.embedding)
      ? `${r.model as string}: ${r.embedding.length}-D embedding, top label ${(r.labels as { label: string; score: number }[]).map((l) => `${l.label} ${l.score.toFixed(2)}`)[0]}`
      : (r.lines as { text: string }[]).map((l) => JSON.stringify(l.text)).join(' / ') || 'no text found',
  video: (r) => {
    const placed = r.placed as Record<string, number>;
    const segments = (r.segments as { label: string; startMs: number; endMs: number }[]).map((s) => `${s.label} ${s.startMs}-${s.endMs} ms`).join(', ');
    return `${String(r.chunks)} chunks (${placed.cloud} in cloud, ${placed.edge} on edge), ${String(r.framesKept)} of ${String(r.framesDecoded)} frames kept; labels ${segments}; cuts at ${(r.boundaries as number[]).join(', ') || 'none'} ms`;
  },
};

function printResponse(request: DemoRequest, response: AgentResponse, roundTripMs: number): void {
  console.log(`${request.label}  (${roundTripMs.toFixed(0)} ms round trip over MQTT)`);
  const answered = (key: string) => key in response.results || key in (response.errors ?? {});
  for (const modality of (['request', 'text', 'audio', 'image', 'video'] as const).filter(answered)) {
    const error = response.errors?.[modality];
    if (modality === 'request') {
      console.log(`    ✗ ${error!.code}: ${error!.message}`);
      continue;
    }
    const placement = response.placement[modality];
    const timings = response.timings[modality];
    const where = placement ? (placement.ran === 'edge' ? 'on edge ' : 'in cloud') : '        ';
    console.log(`    ${modality.padEnd(6)} ${where}  ${error ? `✗ ${error.code}: ${error.message}` : `→ ${show[modality](response.results[modality] as Result)}`}`);
    if (timings) {
      const ms = (n: number) => n.toFixed(1);
      console.log(`                     ${ms(timings.totalMs)} ms (queue ${ms(timings.queueMs)}, compute ${ms(timings.computeMs)}, transfer ${ms(timings.transferMs)})`);
    }
    if (placement) console.log(`                     why: ${placement.why}`);
  }
  console.log('');
}

/** A video chunk's message, as it arrives ahead of the final answer. */
function printChunk(message: AgentResponse & { chunk?: number }): void {
  const answer = message.results.video as { startMs: number; endMs: number; frames: number; model: string; labels: { label: string; score: number }[] } | undefined;
  const error = message.errors?.video;
  const where = message.placement.video?.ran === 'edge' ? 'on edge' : 'in cloud';
  console.log(
    answer
      ? `    chunk ${message.chunk} ${where}: ${answer.startMs}-${answer.endMs} ms, ${answer.frames} frames by ${answer.model}, top label ${answer.labels[0]!.label} ${answer.labels[0]!.score.toFixed(2)}`
      : `    chunk ${message.chunk} ✗ ${error?.code}: ${error?.message}`,
  );
}

/** Publishes one request as an MQTT 3.1.1 client does (reply address in the payload) and waits for its response. */
function ask(client: MqttClient, requestTopic: string, replyTopic: string, id: string, request: Record<string, unknown>): Promise<AgentResponse> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no response to ${id} within 60 s`)), 60_000);
    const onMessage = (topic: string, payload: Buffer) => {
      if (topic !== replyTopic) return;
      const response = JSON.parse(payload.toString('utf8')) as AgentResponse & { correlationId?: string; chunk?: number };
      if (response.correlationId !== id) return;
      if (response.chunk === undefined) finish(undefined, response);
      else printChunk(response);
    };
    const finish = (err?: Error, response?: AgentResponse) => {
      clearTimeout(timer);
      client.off('message', onMessage);
      if (err) reject(err);
      else resolve(response!);
    };
    client.on('message', onMessage);
    // JSON so the printed exchange is readable; media bytes travel base64 (msgpack would keep them binary).
    const body = JSON.stringify({ id, ...request, deadlineMs: 30_000, replyTo: replyTopic, correlationId: id }, function (this: Record<string, unknown>, key, value: unknown) {
      const raw = this[key];
      return raw instanceof Uint8Array ? Buffer.from(raw).toString('base64') : value;
    });
    client.publishAsync(requestTopic, body, { qos: 1 }).catch((err: Error) => finish(err));
  });
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { broker: { type: 'string' }, cloud: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const stops: (() => Promise<void>)[] = [];
  let failures = 0;
  try {
    let brokerUrl = values.broker;
    if (!brokerUrl) {
      const broker = await startEmbeddedBroker();
      stops.unshift(broker.stop);
      brokerUrl = broker.url;
      console.log(`embedded MQTT broker (aedes, MQTT 3.1.1) on ${brokerUrl}`);
    }
    let cloudAddress = values.cloud;
    if (!cloudAddress) {
      console.log('starting the cloud tier (splitinfer cloud, a child process: loading and warming up models)...');
      const started = performance.now();
      const cloud = await startCloudChild();
      stops.unshift(cloud.stop);
      cloudAddress = cloud.address;
      console.log(`cloud tier ready on ${cloudAddress} in ${Math.round(performance.now() - started)} ms`);
    }
    const config = loadEdgeConfig(undefined, { deviceId: 'demo', broker: { url: brokerUrl, protocolVersion: 4 }, cloud: cloudAddress });
    const edge = await startEdgeService(config, createLogger('edge', process.env.SPLITINFER_LOG_LEVEL ?? 'warn'));
    stops.unshift(() => edge.close());
    const topics = deviceTopics(config.deviceId);
    console.log(`edge agent '${config.deviceId}' listening on ${topics.req}\n`);

    const client = await mqtt.connectAsync(brokerUrl, { protocolVersion: 4, clientId: `splitinfer-demo-${process.pid}`, reconnectPeriod: 0 }, false);
    stops.unshift(() => client.endAsync());
    const replyTopic = `splitinfer/demo-client-${process.pid}/replies`;
    await client.subscribeAsync(replyTopic, { qos: 1 });
    for (const [i, request] of requests.entries()) {
      const started = performance.now();
      try {
        const response = await ask(client, topics.req, replyTopic, `demo-${i + 1}`, { inputs: await request.inputs(), ...request.options });
        printResponse(request, response, performance.now() - started);
        if (response.errors) failures++;
      } catch (err) {
        failures++;
        console.log(`${request.label}\n    ✗ ${(err as Error).message}\n`);
      }
    }
  } finally {
    for (const stop of stops) await stop();
  }
  console.log(failures === 0 ? `all ${requests.length} requests answered` : `${failures} of ${requests.length} requests failed`);
  return failures === 0 ? 0 : 1;
}
