/**
 * `bench:serving`'s fairness figure: tenant B's latency at a modest
 * open-loop rate, alone and while tenant A offers ten times the server's
 * capacity (open loop too, so A's arrivals do not slow down when the
 * server does), each tenant on its own gRPC channel with its own API key,
 * against a real `splitinfer cloud` child. Rounds alternate alone and
 * flooded so the machine's drifting load hits both alike; B's samples are
 * pooled per side. What holds B up is the model's fair queue (B's requests
 * take turns with A's instead of waiting behind A's backlog) and A's
 * `maxQueued` share (A's excess is refused at once, not queued). The same
 * flood against the same server without tenants shows what they change.
 */
import type { Client } from '@grpc/grpc-js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { startCloudChild } from '../../edge/local-stack.js';
import { encodeInferInputs } from '../../shared/tensor-codec.js';
import { bytesTensor } from '../../shared/tensor.js';
import { openInferenceChannel } from '../../shared/inference-client.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { sha256Hex } from '../../shared/secrets.js';
import { closedLoop, openLoop, summarize, type LoadSummary, type RequestInit, type Sample } from './serving-load.js';

export interface FairnessResult {
  model: string;
  /** Tenant B's p95 alone and while A floods, in ms; B's failed requests while flooded. */
  bAloneP95Ms: number;
  bFloodedP95Ms: number;
  bErrors: number;
  /** The server's closed-loop capacity (req/s) and what each tenant offered. */
  capacityPerS: number;
  bOfferedPerS: number;
  aOfferedPerS: number;
  bAlone: LoadSummary;
  bFlooded: LoadSummary;
  /** B while flooded on the same server without tenants (one first-come queue): what the fair queue and quotas change. */
  bFloodedWithoutTenants: LoadSummary;
  /** A's requests while flooding: answered, and refused (RESOURCE_EXHAUSTED, with a retry hint). */
  aAnswered: number;
  aRefused: number;
  rounds: number;
  settings: Record<string, unknown>;
}

const keys = { a: 'bench-tenant-a-key', b: 'bench-tenant-b-key' };

/** A cloud child serving the image encoder with `extra` config, and a channel per tenant (with its API key when `withKeys`). */
async function startFairnessCloud(variant: string, providers: string[], extra: Record<string, unknown>, withKeys: boolean) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-fairness-'));
  const file = path.join(dir, 'cloud.yaml');
  writeFileSync(file, stringify({ models: ['image-encoder'], variant, providers, ...extra }));
  const child = await startCloudChild({ extraArgs: ['--config', file] });
  const channelOptions = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20, 'grpc.use_local_subchannel_pool': 1 };
  const a = openInferenceChannel(child.address, channelOptions, withKeys ? { apiKey: keys.a } : {});
  const b = openInferenceChannel(child.address, channelOptions, withKeys ? { apiKey: keys.b } : {});
  return {
    a,
    b,
    stop: async () => {
      a.close();
      b.close();
      await child.stop();
    },
  };
}

export async function fairnessComparison(options: {
  variant: string;
  graph: string;
  providers: string[];
  stepMs: number;
  rounds: number;
  photos: Uint8Array[];
  concurrencyPerModel?: number;
}): Promise<FairnessResult> {
  const { variant, graph, providers, stepMs, rounds, photos } = options;
  const limits = { maxQueuePerModel: 64, concurrencyPerModel: options.concurrencyPerModel ?? 2 };
  const settings = {
    limits,
    auth: {
      apiKeys: [
        { tenant: 'a', sha256: sha256Hex(keys.a) },
        { tenant: 'b', sha256: sha256Hex(keys.b) },
      ],
      tenants: { a: { maxQueued: 4, maxConcurrent: 6 }, b: {} },
    },
  };
  const next = (i: number): RequestInit => ({ modelName: 'image-encoder', ...encodeInferInputs({ input: bytesTensor([photos[i % photos.length]!]) }) });
  /** B's samples while A floods at `aRate` (A starts first and runs past B's window, so every B request meets the flood), and A's. */
  const flooded = async (cloud: { a: Client; b: Client }, round: number, aRate: number, bRate: number) => {
    const aRun = openLoop(cloud.a, aRate, stepMs + 1_000, seededRandom(97 + round), next);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const b = await openLoop(cloud.b, bRate, stepMs, seededRandom(41 + round), next);
    return { b, a: await aRun };
  };
  const fair = await startFairnessCloud(variant, providers, settings, true);
  // The same server without tenants: both callers are the default tenant, so the queue is first come, first served.
  const fifo = await startFairnessCloud(variant, providers, { limits }, false).catch(async (err: unknown) => {
    await fair.stop();
    throw err;
  });
  try {
    for (const cloud of [fair, fifo]) await closedLoop(cloud.b, 2, 2_000, next);
    const capacityPerS = summarize(await closedLoop(fair.b, 4, stepMs, next)).throughputPerS;
    const bRate = 0.3 * capacityPerS;
    const aRate = 10 * capacityPerS;
    console.log(`fairness (${graph}): capacity ~${capacityPerS} req/s; B offers ${bRate.toFixed(1)} req/s, A floods at ${aRate.toFixed(0)} req/s`);
    const samples = { alone: [] as Sample[], flooded: [] as Sample[], flood: [] as Sample[], fifo: [] as Sample[] };
    for (let round = 0; round < rounds; round++) {
      samples.alone.push(...(await openLoop(fair.b, bRate, stepMs, seededRandom(41 + round), next)));
      const withFairQueue = await flooded(fair, round, aRate, bRate);
      samples.flooded.push(...withFairQueue.b);
      samples.flood.push(...withFairQueue.a);
      samples.fifo.push(...(await flooded(fifo, round, aRate, bRate)).b);
      const p95 = (s: Sample[]) => summarize(s).p95Ms;
      console.log(`  round ${round + 1} (pooled so far): B p95 alone ${p95(samples.alone)} ms, flooded ${p95(samples.flooded)} ms, flooded without tenants ${p95(samples.fifo)} ms`);
    }
    const [bAlone, bFlooded, bFloodedFifo] = [summarize(samples.alone, bRate), summarize(samples.flooded, bRate), summarize(samples.fifo, bRate)];
    return {
      model: `image-encoder (${graph})`,
      bAloneP95Ms: bAlone.p95Ms,
      bFloodedP95Ms: bFlooded.p95Ms,
      bErrors: bFlooded.errors,
      capacityPerS,
      bOfferedPerS: Math.round(bRate * 10) / 10,
      aOfferedPerS: Math.round(aRate),
      bAlone,
      bFlooded,
      bFloodedWithoutTenants: bFloodedFifo,
      aAnswered: samples.flood.filter((s) => !s.failed).length,
      aRefused: samples.flood.filter((s) => s.failed?.includes('RESOURCE_EXHAUSTED')).length,
      rounds,
      settings,
    };
  } finally {
    await Promise.all([fair.stop(), fifo.stop()]);
  }
}
