/**
 * The link emulator imposes the conditions it is given, measured on real
 * loopback sockets: delay, rate per direction, a step change, an outage,
 * byte-exact delivery, a real gRPC call, and a real trace replayed.
 * Tolerances allow for timer and scheduling noise on a small shared machine.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { GRPCInferenceService } from '../../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../../shared/grpc-service.js';
import { InferenceClient } from '../../shared/inference-client.js';
import { percentile } from '../../shared/percentile.js';
import {
  bitsBetween,
  constantTrace,
  listBandwidthTraces,
  loadBandwidthTrace,
  loadBandwidthTraces,
  rateAt,
  realTracesDir,
  stepTrace,
  traceStats,
  transferEndS,
} from '../helpers/bandwidth-trace.js';
import { startTestCloud } from '../helpers/cloud.js';
import { startLinkEmulator, type LinkEmulatorOptions } from '../helpers/link-emulator.js';

const now = () => performance.now();
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Bytes received on a socket, with when each chunk arrived (ms, performance clock). */
class Arrivals {
  total = 0;
  readonly log: { atMs: number; total: number }[] = [];
  private readonly waiters: { bytes: number; resolve: () => void }[] = [];
  readonly chunks: Buffer[] = [];
  constructor(socket: net.Socket, keep = false) {
    socket.on('data', (data: Buffer) => {
      this.total += data.length;
      this.log.push({ atMs: now(), total: this.total });
      if (keep) this.chunks.push(data);
      for (const waiter of this.waiters.filter((w) => this.total >= w.bytes)) waiter.resolve();
    });
  }
  /** Resolves with the arrival time of byte number `bytes`. */
  async reach(bytes: number): Promise<number> {
    if (this.total < bytes) await new Promise<void>((resolve) => this.waiters.push({ bytes, resolve }));
    return this.log.find((entry) => entry.total >= bytes)!.atMs;
  }
  bytesBy(atMs: number): number {
    return this.log.filter((entry) => entry.atMs <= atMs).at(-1)?.total ?? 0;
  }
}

async function listen(onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer(onConnection);
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as net.AddressInfo).port;
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  cleanups.push(() => socket.destroy());
  return socket;
}

async function emulate(options: LinkEmulatorOptions) {
  const emulator = await startLinkEmulator(options);
  cleanups.push(() => emulator.close());
  return emulator;
}

const echoServer = () => listen((socket) => socket.pipe(socket));
/** A server whose accepted sockets are handed to the test. */
async function sinkServer(): Promise<{ port: number; accepted: Promise<net.Socket> }> {
  let accept!: (socket: net.Socket) => void;
  const accepted = new Promise<net.Socket>((resolve) => (accept = resolve));
  return { port: await listen(accept), accepted };
}
/** Throughput in Mbit/s seen between two instants. */
const mbpsBetween = (arrivals: Arrivals, fromMs: number, toMs: number) => ((arrivals.bytesBy(toMs) - arrivals.bytesBy(fromMs)) * 8) / ((toMs - fromMs) * 1000);
const median = (values: number[]) => percentile(values, 0.5);
const within = (measured: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(measured - expected) <= tolerance, `${what}: measured ${measured.toFixed(3)}, configured ${expected} ± ${tolerance}`);

describe('bandwidth traces', () => {
  test('a synthetic step trace changes rate at its step and holds the last rate forever', () => {
    const step = stepTrace(20, 0.5, 10);
    assert.deepEqual([rateAt(step, 0), rateAt(step, 9.99), rateAt(step, 10), rateAt(step, 1e6)], [20, 20, 0.5, 0.5]);
    assert.equal(transferEndS(constantTrace(1), 0, 8e6), 8, '1 MB at 1 Mbit/s takes 8 s');
    assert.equal(transferEndS(step, 9, 20e6 + 0.5e6), 11, '1 s at 20 Mbit/s, then 1 s at 0.5 Mbit/s');
    assert.equal(bitsBetween(step, 9, 11), 20.5e6);
  });

  const norwayDir = path.join(realTracesDir, 'norway-3g');
  test('a real trace is loaded as written, replayed step-wise and looped', () => {
    const files = listBandwidthTraces(norwayDir);
    assert.equal(files.length, 40);
    const file = files[0]!;
    const trace = loadBandwidthTrace(file);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((line) => line.split('\t').map(Number) as [number, number]);
    assert.equal(trace.samples.length, lines.length);
    for (const [i, [timeS, mbps]] of lines.entries()) {
      const midStepS = (timeS + (lines[i + 1]?.[0] ?? trace.durationS)) / 2;
      if (midStepS === timeS) continue;
      assert.equal(rateAt(trace, timeS), mbps, `${path.basename(file)} line ${i + 1}`);
      assert.equal(rateAt(trace, midStepS), mbps, `${path.basename(file)} line ${i + 1}, until the next sample`);
      assert.equal(rateAt(trace, midStepS + trace.durationS), mbps, 'the trace loops');
    }
    // The set's summary matches test/fixtures/traces/README.md: median 1.44, p10 0.66, p90 2.91 Mbit/s.
    const stats = traceStats(loadBandwidthTraces(norwayDir));
    within(stats.medianMbps, 1.44, 0.01, 'median');
    within(stats.p10Mbps, 0.66, 0.01, 'p10');
    within(stats.p90Mbps, 2.91, 0.01, 'p90');
  });

  test('the emulator replays a real 3G trace as the uplink rate', { timeout: 10_000 }, async () => {
    const trace = loadBandwidthTrace(listBandwidthTraces(norwayDir)[0]!);
    const sink = await sinkServer();
    const emulator = await emulate({ targetPort: sink.port });
    const client = await connect(emulator.port);
    const arrivals = new Arrivals(await sink.accepted);
    emulator.setConditions({ uplink: trace });
    const startMs = now();
    client.write(randomBytes(4 * 1024 * 1024));
    await sleep(2000);
    for (const atS of [1, 2]) {
      const expectedBytes = bitsBetween(trace, 0, atS) / 8;
      within(arrivals.bytesBy(startMs + atS * 1000) / expectedBytes, 1, 0.15, `bytes by ${atS} s / the trace's capacity`);
    }
  });
});

describe('link emulator', () => {
  test('imposes the configured round-trip time, with jitter within its bound, and a new one at run time', { timeout: 10_000 }, async () => {
    const emulator = await emulate({ targetPort: await echoServer(), rttMs: 60, jitterMs: 5 });
    const client = await connect(emulator.port);
    const arrivals = new Arrivals(client);
    const measureRtts = async (count: number) => {
      const rtts: number[] = [];
      for (let i = 0; i < count; i++) {
        const sentMs = now();
        client.write('ping');
        rtts.push((await arrivals.reach(arrivals.total + 4)) - sentMs);
      }
      return rtts;
    };
    const jittered = await measureRtts(10);
    within(median(jittered), 60, 15, 'median RTT (ms)');
    // One-way delay is RTT/2 ± jitter, so an RTT lies within 60 ± 10 ms, plus scheduling delay.
    assert.ok(Math.min(...jittered) >= 60 - 10 - 2 && Math.max(...jittered) <= 60 + 10 + 25, `RTTs ${jittered.map(Math.round)}`);
    emulator.setConditions({ rttMs: 150, jitterMs: 0 });
    within(median(await measureRtts(4)), 150, 15, 'median RTT after the change (ms)');
  });

  test('imposes separate uplink and downlink rates', { timeout: 10_000 }, async () => {
    const sink = await sinkServer();
    const emulator = await emulate({ targetPort: sink.port, uplink: 4, downlink: 8 });
    const client = await connect(emulator.port);
    const server = await sink.accepted;
    const atServer = new Arrivals(server);
    const atClient = new Arrivals(client);
    const bytes = 500_000;
    const uploadStartMs = now();
    client.write(randomBytes(bytes));
    const uploadS = ((await atServer.reach(bytes)) - uploadStartMs) / 1000;
    within(uploadS, 1.0, 0.25, '500 KB up at 4 Mbit/s (s)');
    const downloadStartMs = now();
    server.write(randomBytes(bytes));
    const downloadS = ((await atClient.reach(bytes)) - downloadStartMs) / 1000;
    within(downloadS, 0.5, 0.125, '500 KB down at 8 Mbit/s (s)');
    assert.deepEqual([emulator.stats().uplinkBytes, emulator.stats().downlinkBytes], [bytes, bytes]);
  });

  test('a step change of rate takes effect mid-transfer', { timeout: 10_000 }, async () => {
    const sink = await sinkServer();
    const emulator = await emulate({ targetPort: sink.port, uplink: 8 });
    const client = await connect(emulator.port);
    const arrivals = new Arrivals(await sink.accepted);
    const bytes = 750_000;
    const startMs = now();
    client.write(randomBytes(bytes));
    await sleep(500);
    const stepMs = now();
    emulator.setConditions({ uplink: 2 });
    const endMs = await arrivals.reach(bytes);
    within(mbpsBetween(arrivals, startMs + 100, stepMs - 20), 8, 2, 'Mbit/s before the step');
    within(mbpsBetween(arrivals, stepMs + 50, endMs - 50), 2, 0.5, 'Mbit/s after the step');
    const expectedS = (stepMs - startMs) / 1000 + (bytes - (((stepMs - startMs) / 1000) * 8e6) / 8) / (2e6 / 8);
    within((endMs - startMs) / 1000, expectedS, expectedS * 0.15, 'whole transfer (s)');
  });

  test('no bytes flow either way during an outage window, and the flow resumes after it', { timeout: 10_000 }, async () => {
    const sink = await sinkServer();
    const emulator = await emulate({ targetPort: sink.port, rttMs: 20 });
    const client = await connect(emulator.port);
    const server = await sink.accepted;
    server.on('data', (data: Buffer) => server.write(data));
    const uploaded = new Arrivals(server);
    const echoed = new Arrivals(client);
    const startMs = now();
    emulator.setConditions({ outages: [{ startS: 0.3, endS: 0.7 }] });
    let sent = 0;
    while (now() - startMs < 1000) {
      client.write(randomBytes(1000));
      sent += 1000;
      await sleep(10);
    }
    await echoed.reach(sent);
    for (const [direction, arrivals] of [['uplink', uploaded], ['downlink', echoed]] as const) {
      // 20 ms of slack at the start: bytes written just before it may be read a little later.
      const duringOutage = arrivals.log.filter((entry) => entry.atMs > startMs + 320 && entry.atMs < startMs + 700);
      assert.deepEqual(duringOutage, [], `${direction} bytes arrived during the outage`);
      assert.ok(arrivals.bytesBy(startMs + 300) > 0, `${direction} bytes flowed before the outage`);
      const resumedMs = arrivals.log.find((entry) => entry.atMs >= startMs + 700)!.atMs - startMs;
      assert.ok(resumedMs < 700 + 50, `the ${direction} flow resumed ${Math.round(resumedMs - 700)} ms after the outage`);
    }
    assert.equal(uploaded.total, sent);
  });

  test('during an outage, refuse mode resets new connections and reset mode resets open ones', { timeout: 10_000 }, async () => {
    const emulator = await emulate({ targetPort: await echoServer(), outageMode: 'refuse', outages: [{ startS: 0 }] });
    const refused = net.connect({ host: '127.0.0.1', port: emulator.port });
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => refused.on('error', resolve));
    assert.equal(error.code, 'ECONNRESET');
    emulator.setConditions({ outages: [], outageMode: 'reset' });
    const client = await connect(emulator.port);
    const echoed = new Arrivals(client);
    client.write('up');
    await echoed.reach(2);
    const resetSeen = new Promise<NodeJS.ErrnoException>((resolve) => client.on('error', resolve));
    emulator.setConditions({ outages: [{ startS: 0.1, endS: 0.3 }] });
    assert.equal((await resetSeen).code, 'ECONNRESET');
    const stats = emulator.stats();
    assert.deepEqual([stats.connectionsAccepted, stats.connectionsRefused, stats.connectionsReset], [2, 1, 1]);
  });

  test('delivers every byte in order both ways under jitter and retransmission-style loss', { timeout: 10_000 }, async () => {
    const emulator = await emulate({ targetPort: await echoServer(), uplink: 80, rttMs: 10, jitterMs: 8, lossRate: 0.3, lossDelayMs: 15 });
    const client = await connect(emulator.port);
    const echoed = new Arrivals(client, true);
    const payload = randomBytes(2 * 1024 * 1024);
    client.end(payload);
    await new Promise((resolve) => client.on('end', resolve));
    const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
    assert.equal(sha256(Buffer.concat(echoed.chunks)), sha256(payload));
    assert.deepEqual([emulator.stats().uplinkBytes, emulator.stats().downlinkBytes], [payload.length, payload.length]);
  });

  test('carries real gRPC calls to the cloud tier with the configured delay and uplink rate', { timeout: 20_000 }, async () => {
    const cloud = await startTestCloud({ models: ['audio-vad'] });
    cleanups.push(() => cloud.server.drain(1000));
    const emulator = await emulate({ targetPort: cloud.server.port, rttMs: 80, uplink: 2 });
    const client = new InferenceClient(emulator.address);
    cleanups.push(() => client.close());
    const serverLive = () => callUnary(client.grpc, GRPCInferenceService.method.serverLive, {});
    assert.equal((await serverLive()).live, true);
    const latenciesMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const sentMs = now();
      await serverLive();
      latenciesMs.push(now() - sentMs);
    }
    // One RTT per call on the open HTTP/2 connection, plus a few ms of gRPC work at both ends.
    within(median(latenciesMs), 80 + 5, 20, 'ServerLive latency over an 80 ms RTT (ms)');
    // 2 s of 16 kHz PCM16 silence: 64 000 bytes take 256 ms at 2 Mbit/s, plus one RTT and compute.
    const sentMs = now();
    const answer = await client.inferPipeline('audio-vad', new Uint8Array(64_000), { id: 'through-the-link' });
    const inferMs = now() - sentMs;
    assert.deepEqual([answer.id, answer.result.segments], ['through-the-link', []]);
    assert.ok(inferMs >= 256 + 80 - 5, `ModelInfer took ${Math.round(inferMs)} ms, less than its transfer time`);
    assert.ok(inferMs <= 256 + 80 + answer.computeUs / 1000 + answer.queueUs / 1000 + 150, `ModelInfer took ${Math.round(inferMs)} ms`);
    assert.ok(emulator.stats().uplinkBytes > 64_000 && emulator.stats().downlinkBytes > 0);
  });
});
