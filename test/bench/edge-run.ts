/**
 * One run of the edge latency benchmark: the real agent and cloud tier as
 * child processes, behind mosquitto (MQTT 5) and the embedded aedes broker
 * (MQTT 3.1.1); for each modality (text and audio answered on the device, an
 * image offloaded) and 1, 8 and 32 requests in flight, the round trip a
 * closed-loop requester sees beside its floors (edge-floors.ts, echo-device.ts)
 * measured in the same run; and a unary ModelInfer to the cloud tier against
 * the server's own queue + compute time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import type { ModelStreamInferResponse } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary, openBidiStream } from '../../shared/grpc-service.js';
import { numberParameter, ParameterNames } from '../../shared/infer-parameters.js';
import { InferenceClient } from '../../shared/inference-client.js';
import { encodeInferInputs } from '../../shared/tensor-codec.js';
import { bytesTensor } from '../../shared/tensor.js';
import { createLogger } from '../../shared/log.js';
import { readFixture } from '../helpers/inference.js';
import { startAedes, startMosquitto, type TestBroker } from '../helpers/mqtt.js';
import { BenchClient, type TimedReply } from './bench-client.js';
import { EchoDevice } from './echo-device.js';
import { measureHandlerFloors, type HandlerFloors } from './edge-floors.js';
import { percentile } from '../../shared/percentile.js';
import { openLog, startAgent, startCloudTier } from './processes.js';

export const benchModalities = ['text', 'audio', 'image'] as const;
export type BenchModality = (typeof benchModalities)[number];
export const inFlightLevels = [1, 8, 32] as const;

export interface EdgeCase {
  broker: string;
  modality: BenchModality;
  /** Where the agent ran the task (the majority of replies). */
  ran: string;
  inFlight: number;
  requests: number;
  /** Replies with an error, or none within the timeout. */
  failed: number;
  rttP50Ms: number;
  rttP95Ms: number;
  rttP99Ms: number;
  /** The agent's own timings.<modality>.totalMs. */
  agentTotalP50Ms: number;
  /** Offloaded tasks: the cloud's queue + compute as the agent reports it. */
  cloudServerP50Ms: number | null;
  handlerP50Ms: number;
  handlerInThreadP50Ms: number;
  bareOrtP50Ms: number;
  /** The echo device through the same broker, same payload, same requests in flight. */
  echoP50Ms: number;
  requestsPerS: number;
}

export interface GrpcUnary {
  model: string;
  calls: number;
  /** ServerLive: grpc-js and HTTP/2 alone. */
  serverLiveP50Ms: number;
  rttP50Ms: number;
  /** queue_us + compute_us from the response parameters. */
  serverP50Ms: number;
  /** Per call, round trip minus the server's queue + compute. */
  overheadP50Ms: number;
  overheadP95Ms: number;
  /** The same requests one at a time on one open ModelStreamInfer stream (the edge's offload path): round trip minus queue + compute. */
  streamOverheadP50Ms: number;
}

export interface EdgeTarget {
  target: string;
  measured: string;
  met: boolean;
}

export interface EdgeBenchResults {
  generatedAt: string;
  runSeconds: number;
  setup: { mode: 'quick' | 'full'; cpus: number; loadAverageAtStart: number[]; node: string; agent: string; requester: string; inputs: Record<BenchModality, string> };
  floors: Record<BenchModality, HandlerFloors>;
  cases: EdgeCase[];
  grpc: GrpcUnary;
  targets: EdgeTarget[];
  notes: string[];
}

interface Counts {
  /** Measured requests per case: the larger of base and perInFlight × in flight. */
  base: Record<BenchModality, number>;
  perInFlight: number;
  echo: number;
  floorRuns: Record<BenchModality, number>;
  grpcCalls: number;
}

const fullCounts: Counts = { base: { text: 400, audio: 40, image: 40 }, perInFlight: 4, echo: 400, floorRuns: { text: 200, audio: 20, image: 10 }, grpcCalls: 500 };
const quickCounts: Counts = { base: { text: 60, audio: 10, image: 10 }, perInFlight: 2, echo: 100, floorRuns: { text: 40, audio: 5, image: 3 }, grpcCalls: 100 };

const replyTimeoutMs = 120_000;
const round = (ms: number) => Math.round(ms * 100) / 100;
const p = (values: number[], q: number) => round(percentile(values, q));

const inputs = {
  text: { label: 'text "Where is my order?"', body: () => ({ text: 'Where is my order?' }) },
  audio: { label: 'audio models/samples/audio/speech-en.wav', body: () => ({ audio: readFixture('audio', 'speech-en.wav') }) },
  image: { label: 'image models/samples/ocr/invoice.png (offloaded)', body: () => ({ image: readFixture('ocr', 'invoice.png') }) },
};

/** `inFlight` requesters, each sending its next request when the last is answered, until `total` are answered. */
async function closedLoop(inFlight: number, total: number, send: (i: number) => Promise<TimedReply | undefined>): Promise<{ replies: (TimedReply | undefined)[]; wallMs: number }> {
  const replies: (TimedReply | undefined)[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) replies.push(await send(next++));
    }),
  );
  return { replies, wallMs: performance.now() - started };
}

interface BrokerRun {
  broker: TestBroker;
  client: BenchClient;
  agentId: string;
  echoId: string;
}

async function runCase(run: BrokerRun, modality: BenchModality, inFlight: number, counts: Counts, floors: HandlerFloors, tag: string): Promise<EdgeCase> {
  const body = inputs[modality].body();
  // Ids are unique per phase: the agent answers a repeated id only once (a QoS 1 redelivery).
  const ask = (device: string, phase: string) => (i: number) => run.client.ask(device, { id: `${tag}-${phase}-${i}`, inputs: body, deadlineMs: replyTimeoutMs }, replyTimeoutMs);
  const warmup = Math.max(inFlight, 4);
  await closedLoop(inFlight, warmup, ask(run.agentId, 'warmup'));
  const total = Math.max(counts.base[modality], counts.perInFlight * inFlight);
  const { replies, wallMs } = await closedLoop(inFlight, total, ask(run.agentId, 'measured'));
  await closedLoop(inFlight, warmup, ask(run.echoId, 'warmup'));
  const echo = await closedLoop(inFlight, Math.max(counts.echo, counts.perInFlight * inFlight), ask(run.echoId, 'measured'));

  const ok = replies.filter((r): r is TimedReply => r !== undefined && r.reply.errors === undefined);
  const timings = ok.map((r) => r.reply.timings[modality]!);
  const sites = ok.map((r) => r.reply.placement[modality]?.ran ?? '?');
  const ran = [...new Set(sites)].sort((a, b) => sites.filter((s) => s === b).length - sites.filter((s) => s === a).length)[0] ?? '–';
  const rtts = ok.map((r) => r.receivedAtMs - r.sentAtMs);
  const cloud = ok.filter((r) => r.reply.placement[modality]?.ran === 'cloud').map((r) => r.reply.timings[modality]!);
  return {
    broker: run.broker.name,
    modality,
    ran,
    inFlight,
    requests: replies.length,
    failed: replies.length - ok.length,
    rttP50Ms: p(rtts, 0.5),
    rttP95Ms: p(rtts, 0.95),
    rttP99Ms: p(rtts, 0.99),
    agentTotalP50Ms: p(timings.map((t) => t.totalMs), 0.5),
    cloudServerP50Ms: cloud.length ? p(cloud.map((t) => t.queueMs + t.computeMs), 0.5) : null,
    handlerP50Ms: floors.handlerP50Ms,
    handlerInThreadP50Ms: floors.handlerInThreadP50Ms,
    bareOrtP50Ms: floors.bareOrtP50Ms,
    echoP50Ms: p(echo.replies.filter((r) => r !== undefined).map((r) => r!.receivedAtMs - r!.sentAtMs), 0.5),
    requestsPerS: round((ok.length / wallMs) * 1000),
  };
}

async function measureGrpc(address: string, calls: number): Promise<GrpcUnary> {
  const client = new InferenceClient(address);
  const text = new TextEncoder().encode(inputs.text.body().text);
  try {
    const live: number[] = [];
    const rtts: number[] = [];
    const servers: number[] = [];
    for (let i = 0; i < calls + 20; i++) {
      let started = performance.now();
      await callUnary(client.grpc, GRPCInferenceService.method.serverLive, {});
      const liveMs = performance.now() - started;
      started = performance.now();
      const answer = await client.inferPipeline('text-intent', text);
      const rttMs = performance.now() - started;
      // The first calls open the channel and warm both sides.
      if (i < 20) continue;
      live.push(liveMs);
      rtts.push(rttMs);
      servers.push((answer.queueUs + answer.computeUs) / 1000);
    }
    const overheads = rtts.map((rtt, i) => rtt - servers[i]!);
    const streamOverheads = await streamOverheadsMs(client, text, calls);
    return {
      model: 'text-intent',
      calls,
      serverLiveP50Ms: p(live, 0.5),
      rttP50Ms: p(rtts, 0.5),
      serverP50Ms: p(servers, 0.5),
      overheadP50Ms: p(overheads, 0.5),
      overheadP95Ms: p(overheads, 0.95),
      streamOverheadP50Ms: p(streamOverheads, 0.5),
    };
  } finally {
    client.close();
  }
}

/** Per request on one open stream, one at a time: round trip minus the server's queue + compute. */
async function streamOverheadsMs(client: InferenceClient, text: Uint8Array, calls: number): Promise<number[]> {
  const call = openBidiStream(client.grpc, GRPCInferenceService.method.modelStreamInfer);
  const answers: ((message: ModelStreamInferResponse) => void)[] = [];
  call.on('data', (message: ModelStreamInferResponse) => answers.shift()?.(message));
  const overheads: number[] = [];
  try {
    for (let i = 0; i < calls + 20; i++) {
      const answered = new Promise<ModelStreamInferResponse>((resolve) => answers.push(resolve));
      const started = performance.now();
      call.write({ modelName: 'text-intent', id: `s${i}`, ...encodeInferInputs({ input: bytesTensor([text]) }) });
      const message = await answered;
      const rttMs = performance.now() - started;
      if (message.errorMessage) throw new Error(`ModelStreamInfer failed: ${message.errorMessage}`);
      const parameters = message.inferResponse?.parameters ?? {};
      const serverMs = ((numberParameter(parameters, ParameterNames.queueUs) ?? 0) + (numberParameter(parameters, ParameterNames.computeUs) ?? 0)) / 1000;
      if (i >= 20) overheads.push(rttMs - serverMs);
    }
    return overheads;
  } finally {
    call.end();
  }
}

function judge(cases: EdgeCase[], grpc: GrpcUnary): EdgeTarget[] {
  const targets: EdgeTarget[] = cases
    .filter((c) => c.modality === 'text' && c.inFlight === 1)
    .map((c) => ({
      target: `${c.broker}: MQTT round trip of a local text request ≤ the agent's totalMs + 2 ms (p50, one in flight)`,
      measured: `${c.rttP50Ms} ms vs ${c.agentTotalP50Ms} + 2 ms`,
      met: c.rttP50Ms <= c.agentTotalP50Ms + 2,
    }));
  targets.push({
    target: 'gRPC unary overhead ≤ 1 ms over the server\'s queue_us + compute_us (p50)',
    measured: `${grpc.overheadP50Ms} ms (round trip ${grpc.rttP50Ms} ms, server ${grpc.serverP50Ms} ms)`,
    met: grpc.overheadP50Ms <= 1,
  });
  return targets;
}

export async function runEdgeBenchmark(options: { quick?: boolean; notes?: string[] }): Promise<EdgeBenchResults> {
  const started = performance.now();
  const loadAverageAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const counts = options.quick ? quickCounts : fullCounts;
  const log = createLogger('bench-edge', process.env.SPLITINFER_LOG_LEVEL ?? 'warn');
  const catalog = loadCatalog();
  const floorInputs: Record<BenchModality, { model: string; variant: string; input: Uint8Array }> = {
    text: { model: 'text-intent', variant: 'int8-pruned', input: new TextEncoder().encode(inputs.text.body().text) },
    audio: { model: 'audio-vad', variant: 'int8', input: inputs.audio.body().audio },
    // Offloaded: its floors are the cloud's variant.
    image: { model: 'image-ocr', variant: 'fp32', input: inputs.image.body().image },
  };
  const floors = {} as Record<BenchModality, HandlerFloors>;
  for (const modality of benchModalities) {
    const f = floorInputs[modality];
    floors[modality] = await measureHandlerFloors(findModel(catalog, f.model), f.variant, f.input, counts.floorRuns[modality], 1, log);
    console.log(`floors ${modality}: handler ${floors[modality].handlerP50Ms} ms, in-thread ${floors[modality].handlerInThreadP50Ms} ms, bare ORT ${floors[modality].bareOrtP50Ms} ms`);
  }

  const processLog = openLog('edge');
  const cloud = await startCloudTier(undefined, processLog);
  const configDir = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-bench-edge-'));
  const configFile = path.join(configDir, 'edge.json');
  // Room for every request in flight: the default limit (16) would refuse half of the 32.
  writeFileSync(configFile, JSON.stringify({ cloud: cloud.address, limits: { maxConcurrentRequests: 64 } }));
  const cases: EdgeCase[] = [];
  let grpc: GrpcUnary;
  try {
    grpc = await measureGrpc(cloud.address, counts.grpcCalls);
    console.log(`gRPC unary text-intent: round trip ${grpc.rttP50Ms} ms, server ${grpc.serverP50Ms} ms, overhead ${grpc.overheadP50Ms} ms, on a stream ${grpc.streamOverheadP50Ms} ms (p50)`);
    for (const startBroker of [() => startMosquitto(5), startAedes]) {
      const broker = await startBroker();
      const agentId = `bench-edge-${process.pid}-v${broker.protocolVersion}`;
      const echoId = `${agentId}-echo`;
      const stops: (() => Promise<void>)[] = [() => broker.stop()];
      try {
        const agent = await startAgent({ core: undefined, broker, deviceId: agentId, configFile, dutyShare: 1, throttlePeriodMs: 100, throttleCore: undefined, log: processLog });
        stops.unshift(() => agent.stop());
        const echo = await EchoDevice.start(broker, echoId);
        stops.unshift(() => echo.stop());
        const client = await BenchClient.connect(broker, `edge-${process.pid}-v${broker.protocolVersion}`);
        stops.unshift(() => client.close());
        for (const modality of benchModalities) {
          for (const inFlight of inFlightLevels) {
            const c = await runCase({ broker, client, agentId, echoId }, modality, inFlight, counts, floors[modality], `${modality}-${inFlight}`);
            console.log(`${c.broker} ${modality} ×${inFlight}: RTT p50 ${c.rttP50Ms} ms (agent ${c.agentTotalP50Ms}, echo ${c.echoP50Ms}), ${c.requestsPerS} req/s, ${c.failed} failed`);
            cases.push(c);
          }
        }
      } finally {
        for (const stop of stops) await stop();
      }
    }
  } finally {
    await cloud.stop();
    rmSync(configDir, { recursive: true, force: true });
  }
  return {
    generatedAt: new Date().toISOString(),
    runSeconds: Math.round((performance.now() - started) / 1000),
    setup: {
      mode: options.quick ? 'quick' : 'full',
      cpus: os.availableParallelism(),
      loadAverageAtStart,
      node: process.version,
      agent: '`splitinfer edge` child process, default config (rules strategy: text and audio on the device, images to the cloud) with limits.maxConcurrentRequests 64; `splitinfer cloud` child process with one ORT thread; nothing pinned',
      requester: 'this process: one mqtt.js client (QoS 1, msgpack, Nagle off) running 1, 8 or 32 closed loops; the echo device and the floors also run here',
      inputs: { text: inputs.text.label, audio: inputs.audio.label, image: inputs.image.label },
    },
    floors,
    cases,
    grpc,
    targets: judge(cases, grpc),
    notes: options.notes ?? [],
  };
}
