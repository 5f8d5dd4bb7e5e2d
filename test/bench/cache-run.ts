/**
 * What `bench:cache` measures: uplink bytes and latency of the edge's offload
 * client with content-addressed offload off and on, in the same run, over
 * the userspace link emulator (test/helpers/link-emulator.ts) to a real
 * `splitinfer cloud` child with its response cache on. Two workloads with
 * repeats, the same requests in the same order for both sides:
 *  - fixed camera: one device sends snapshots one after another; the scene
 *    changes in a quarter of them, the others repeat the previous JPEG
 *    byte for byte (an unchanged scene from a deterministic encoder);
 *  - product photo: several devices at once, most requests one of a few
 *    product photos that every device sends, the rest each device's own
 *    (1920 px phone photos, shaped by the edge to 1280 px).
 * Each side gets a fresh cloud (a cold cache), so "off" gains from the
 * cache's hits only in compute, "on" also in upload. Bytes are what the
 * emulator carried up, everything included (gRPC framing, digests, probes).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { stringify } from 'yaml';
import { loadEdgeConfig } from '../../edge/config.js';
import { startCloudChild } from '../../edge/local-stack.js';
import { OffloadClient } from '../../edge/offload/offload-client.js';
import { LinkEstimator } from '../../edge/policy/link-estimator.js';
import { createLogger } from '../../shared/log.js';
import { percentile } from '../../shared/percentile.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { photoLikeImages } from '../../models/image-encoder/photo-like-images.js';
import { startLinkEmulator, type LinkConditions } from '../helpers/link-emulator.js';

export interface WorkloadResult {
  workload: string;
  devices: number;
  requests: number;
  /** Requests whose input had been sent before (by any device). */
  repeatRate: number;
  off: SideResult;
  on: SideResult;
  /** 1 − on / off uplink bytes. */
  uplinkSaved: number;
}

export interface SideResult {
  uplinkBytes: number;
  p50Ms: number;
  p95Ms: number;
  askedByDigest: number;
  foundByDigest: number;
  errors: number;
}

export interface CacheBenchResults {
  generatedAt: string;
  quick: boolean;
  link: { uplinkMbps: number; downlinkMbps: number; rttMs: number };
  model: string;
  workloads: WorkloadResult[];
  setup: { cpus: number; cpuModel: string; node: string; loadAverage: number[] };
}

const link: Partial<LinkConditions> & { uplink: number; downlink: number; rttMs: number } = { uplink: 4, downlink: 20, rttMs: 60 };
const log = createLogger('bench-cache', process.env.SPLITINFER_LOG_LEVEL ?? 'warn');

/** Each device's inputs, in order. */
type Workload = { name: string; devices: Uint8Array[][] };

async function workloads(quick: boolean): Promise<Workload[]> {
  const random = seededRandom(13);
  const pool = (await photoLikeImages(quick ? 30 : 60, 1301)).map((p) => p.bytes);
  let next = 0;
  const fresh = () => pool[next++ % pool.length]!;
  const snapshots = quick ? 16 : 40;
  const camera: Uint8Array[] = [fresh()];
  for (let i = 1; i < snapshots; i++) camera.push(random() < 0.25 ? fresh() : camera[i - 1]!);
  // Phone photos: 1920 px (the edge shapes them to 1280 px), so an upload costs several round trips.
  const phonePhoto = async () => new Uint8Array(await sharp(fresh()).resize({ width: 1920 }).jpeg({ quality: 90 }).toBuffer());
  const products = [await phonePhoto(), await phonePhoto(), await phonePhoto()];
  const devices = quick ? 3 : 6;
  const perDevice = quick ? 6 : 10;
  const shop: Uint8Array[][] = [];
  for (let d = 0; d < devices; d++) {
    const inputs: Uint8Array[] = [];
    for (let i = 0; i < perDevice; i++) inputs.push(random() < 0.6 ? products[Math.floor(random() * products.length)]! : await phonePhoto());
    shop.push(inputs);
  }
  return [
    { name: 'fixed camera (1 device, a new scene in a snapshot with p = 0.25)', devices: [camera] },
    { name: `product photo (${devices} devices, 60% one of 3 shared photos)`, devices: shop },
  ];
}

function repeatRate(w: Workload): number {
  const seen = new Set<Uint8Array>();
  let repeats = 0;
  let total = 0;
  // Round-robin over devices approximates the interleaving of concurrent devices.
  for (let i = 0; i < Math.max(...w.devices.map((d) => d.length)); i++) {
    for (const device of w.devices) {
      const input = device[i];
      if (!input) continue;
      total++;
      if (seen.has(input)) repeats++;
      seen.add(input);
    }
  }
  return repeats / total;
}

async function runSide(w: Workload, contentAddressing: boolean): Promise<SideResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-cache-'));
  const file = path.join(dir, 'cloud.yaml');
  writeFileSync(file, stringify({ models: ['image-encoder'], variant: 'mobilenet-v2', cache: { bytes: 256 << 20 } }));
  const cloud = await startCloudChild({ extraArgs: ['--config', file] });
  const emulator = await startLinkEmulator({ targetPort: Number(cloud.address.split(':')[1]), ...link });
  try {
    const latencies: number[] = [];
    let errors = 0;
    const totals = { asked: 0, found: 0 };
    const before = emulator.stats().uplinkBytes;
    await Promise.all(
      w.devices.map(async (inputs, d) => {
        const config = loadEdgeConfig(undefined, { cloud: emulator.address, offload: { contentAddressing } });
        const client = await OffloadClient.connect(config, log);
        const p = config.policy;
        const estimator = new LinkEstimator({
          minBandwidthPayloadBytes: p.minBandwidthPayloadBytes,
          windowSize: p.estimateWindow,
          maxAgeMs: p.estimateMaxAgeMs,
          probeIdleMs: p.probeIdleMs,
          uplinkHalfLifeMs: p.uplinkHalfLifeMs,
        });
        client.watchForStalls(estimator);
        // On a loaded machine the first connection can miss the breaker's start-up probe: wait for the circuit to close.
        for (const deadline = Date.now() + 60_000; client.health().state !== 'closed'; await new Promise((resolve) => setTimeout(resolve, 200))) {
          if (Date.now() > deadline) throw new Error(`device ${d} could not reach the cloud through the link emulator within 60 s`);
        }
        estimator.recordProbe(await client.measureRoundTripMs(5_000));
        for (const [i, input] of inputs.entries()) {
          try {
            const answer = await client.infer('image-encoder', input, { taskId: `d${d}-${i}`, budgetMs: 30_000, image: true });
            estimator.recordRoundTrip(answer.sentBytes, answer.linkMs);
            latencies.push(answer.totalMs);
          } catch (err) {
            errors++;
            log.warn({ err: (err as Error).message }, 'offload failed');
          }
        }
        totals.asked += client.stats().askedByDigest;
        totals.found += client.stats().foundByDigest;
        client.close();
      }),
    );
    return {
      uplinkBytes: emulator.stats().uplinkBytes - before,
      p50Ms: round1(percentile(latencies, 0.5)),
      p95Ms: round1(percentile(latencies, 0.95)),
      askedByDigest: totals.asked,
      foundByDigest: totals.found,
      errors,
    };
  } finally {
    await emulator.close();
    await cloud.stop();
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export async function runCacheBenchmark(options: { quick?: boolean }): Promise<CacheBenchResults> {
  const quick = options.quick ?? false;
  const results: WorkloadResult[] = [];
  for (const w of await workloads(quick)) {
    const off = await runSide(w, false);
    const on = await runSide(w, true);
    results.push({
      workload: w.name,
      devices: w.devices.length,
      requests: w.devices.reduce((n, d) => n + d.length, 0),
      repeatRate: Math.round(repeatRate(w) * 1000) / 1000,
      off,
      on,
      uplinkSaved: Math.round((1 - on.uplinkBytes / off.uplinkBytes) * 1000) / 1000,
    });
  }
  return {
    generatedAt: new Date().toISOString(),
    quick,
    link: { uplinkMbps: link.uplink, downlinkMbps: link.downlink, rttMs: link.rttMs },
    model: 'image-encoder (mobilenet-v2), images shaped by the edge (1280 px, JPEG q85)',
    workloads: results,
    setup: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100) },
  };
}
