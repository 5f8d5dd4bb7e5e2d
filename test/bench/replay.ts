/**
 * One replay: a fresh agent with one strategy, talking to the cloud tier
 * through its own link emulator, gets the workload at its offsets; every
 * reply is timed and its placement kept. The trace's clock starts with the
 * first request, so every strategy of a group sees the same link at the same
 * offset. Uplink bytes are what the emulator delivered to the cloud between
 * the first request and the last reply (payloads, gRPC framing, probes).
 */
import { rmSync, writeFileSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Modality, Quality, Site } from '../../edge/request.js';
import type { BandwidthTrace } from '../helpers/bandwidth-trace.js';
import { startLinkEmulator, type LinkEmulator } from '../helpers/link-emulator.js';
import type { TestBroker } from '../helpers/mqtt.js';
import type { BenchClient, TimedReply } from './bench-client.js';
import { startAgent, startBusyLoop, type ChildHandle, type CorePlan } from './processes.js';
import type { RequestKind, WorkloadRequest } from './workload.js';

export interface LinkPlan {
  rttMs: number;
  jitterMs: number;
  /** Uplink capacity from the first request on (the downlink is not limited: replies are small). */
  uplink: BandwidthTrace;
}

/** How the agent's core is made a slower device for this replay. */
export interface EdgeConditions {
  /** Share of each throttle period the agent may run (0.25 ≈ 4× slower). */
  dutyShare: number;
  throttlePeriodMs: number;
  /** A busy loop shares the agent's core. */
  busy: boolean;
}

export interface ReplaySetup {
  broker: TestBroker;
  client: BenchClient;
  cloudPort: number;
  cores: CorePlan;
  deviceId: string;
  /** Edge config keys beyond the link (policy.strategy and its settings). */
  edgeConfig: Record<string, unknown>;
  link: LinkPlan;
  edge: EdgeConditions;
  workload: readonly WorkloadRequest[];
  /** Sent one at a time after the workload, with the link unconstrained (e.g. to time a fixed OCR request). */
  calibration?: readonly WorkloadRequest[];
  /**
   * Sent before the link clock starts, once a second until `ready` holds for
   * its reply (at most `maxMs`): a replay of a device that has been up a
   * while, e.g. one that has loaded its reference variant.
   */
  warmup?: { request: WorkloadRequest; ready(reply: TimedReply['reply']): boolean; maxMs: number };
  /** Called once the link clock has started (the step scenario changes conditions from here). */
  onStart?(emulator: LinkEmulator): void;
  log: WriteStream;
}

export interface RequestRecord {
  index: number;
  kind: RequestKind;
  modality: Modality;
  deadlineMs: number;
  /** From the replay's start to the publish. */
  sentAtMs: number;
  latencyMs: number;
  /** An error in the reply, or no reply at all. */
  failed: boolean;
  lost: boolean;
  missed: boolean;
  /** Where the task ran in the end. */
  site?: Site;
  /** Where the strategy placed it: the cloud, for a task that fell back to the edge when the cloud failed. */
  decided?: Site;
  /** The payload-shaping option or side the strategy chose (adaptive reports it). */
  chosen?: string;
  why?: string;
  /** The strategy ran this task on the path it did not choose, to keep that path's estimates fresh. */
  explored?: boolean;
  errorCode?: string;
  computeMs?: number;
  queueMs?: number;
  /** Encoder requests: the floor asked, the image (by name), the graph that answered and its top-1 label. */
  floor?: Quality;
  image?: string;
  answeredBy?: string;
  top1?: string;
}

export interface ReplayResult {
  records: RequestRecord[];
  calibration: RequestRecord[];
  uplinkBytes: number;
  downlinkBytes: number;
  durationMs: number;
}

/** How long after its deadline a request counts as lost (the agent answers by its deadline). */
const lostAfterDeadlineMs = 30_000;
const calibrationQuietMs = 2_000;

/** What an encode answer says about who answered it. */
function encoderAnswer(request: WorkloadRequest, result: unknown): Pick<RequestRecord, 'answeredBy' | 'top1'> {
  if (request.task?.image !== 'encode' || typeof result !== 'object' || result === null) return {};
  const { model, labels } = result as { model?: string; labels?: { label: string }[] };
  return { answeredBy: model, top1: labels?.[0]?.label };
}

function record(request: WorkloadRequest, startMs: number, timed: TimedReply | undefined, sentAtMs: number): RequestRecord {
  const base = {
    index: request.index,
    kind: request.kind,
    modality: request.modality,
    deadlineMs: request.deadlineMs,
    sentAtMs: Math.round(sentAtMs - startMs),
    ...(request.quality?.image !== undefined ? { floor: request.quality.image } : {}),
    ...(request.image ? { image: request.image } : {}),
  };
  if (!timed) return { ...base, latencyMs: request.deadlineMs + lostAfterDeadlineMs, failed: true, lost: true, missed: true };
  const { reply } = timed;
  const placement = reply.placement[request.modality];
  const timings = reply.timings[request.modality];
  const error = reply.errors?.[request.modality] ?? reply.errors?.request;
  const latencyMs = timed.receivedAtMs - timed.sentAtMs;
  const chosen = placement?.estimates?.chosen;
  const site = placement?.ran ?? undefined;
  return {
    ...base,
    latencyMs: Math.round(latencyMs * 10) / 10,
    failed: error !== undefined,
    lost: false,
    missed: error !== undefined || latencyMs > request.deadlineMs,
    site,
    decided: placement?.decided,
    chosen: typeof chosen === 'string' ? chosen : undefined,
    why: placement?.why,
    explored: placement?.estimates?.explored === true || undefined,
    errorCode: error?.code,
    computeMs: timings?.computeMs,
    queueMs: timings?.queueMs,
    ...encoderAnswer(request, reply.results[request.modality]),
  };
}

function ask(setup: ReplaySetup, request: WorkloadRequest): Promise<TimedReply | undefined> {
  const body = {
    id: `${setup.deviceId}-${request.index}`,
    inputs: request.inputs,
    deadlineMs: request.deadlineMs,
    ...(request.task && { task: request.task, quality: request.quality }),
    ...(request.prefer && { prefer: request.prefer }),
  };
  return setup.client.ask(setup.deviceId, body, request.deadlineMs + lostAfterDeadlineMs);
}

async function warmUp(setup: ReplaySetup, warmup: NonNullable<ReplaySetup['warmup']>): Promise<void> {
  const endAt = performance.now() + warmup.maxMs;
  for (let i = 0; performance.now() < endAt; i++) {
    const timed = await ask(setup, { ...warmup.request, index: -100 - i });
    if (timed && warmup.ready(timed.reply)) return;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  throw new Error(`the agent was not ready after ${warmup.maxMs} ms of warm-up requests`);
}

export async function runReplay(setup: ReplaySetup): Promise<ReplayResult> {
  const { cores, link, edge } = setup;
  const stops: (() => Promise<void>)[] = [];
  try {
    const emulator = await startLinkEmulator({ targetPort: setup.cloudPort, rttMs: link.rttMs, jitterMs: link.jitterMs, uplink: link.uplink, seed: 1 });
    stops.unshift(() => emulator.close());
    if (edge.busy) {
      const busy: ChildHandle = startBusyLoop(cores.edgeCore);
      stops.unshift(busy.stop);
    }
    const configFile = path.join(os.tmpdir(), `splitinfer-bench-${setup.deviceId}.json`);
    writeFileSync(configFile, JSON.stringify({ ...setup.edgeConfig, cloud: emulator.address }));
    stops.unshift(async () => rmSync(configFile, { force: true }));
    const agent = await startAgent({
      core: cores.edgeCore,
      broker: setup.broker,
      deviceId: setup.deviceId,
      configFile,
      dutyShare: edge.dutyShare,
      throttlePeriodMs: edge.throttlePeriodMs,
      throttleCore: cores.cloudCore,
      log: setup.log,
    });
    stops.unshift(agent.stop);

    if (setup.warmup) await warmUp(setup, setup.warmup);
    // The same link from the same instant for every strategy: the trace restarts with the first request.
    emulator.setConditions({ uplink: link.uplink });
    setup.onStart?.(emulator);
    const before = emulator.stats();
    const startMs = performance.now();
    const records = await Promise.all(
      setup.workload.map(async (request) => {
        const waitMs = startMs + request.sendAtMs - performance.now();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
        const sentAtMs = performance.now();
        return record(request, startMs, await ask(setup, request), sentAtMs);
      }),
    );
    const durationMs = performance.now() - startMs;
    const after = emulator.stats();

    const calibration: RequestRecord[] = [];
    if (setup.calibration?.length) {
      emulator.setConditions({ uplink: null, rttMs: 0, jitterMs: 0, outages: [] });
      // Work that outlived its deadline may still be running on either side.
      await new Promise((resolve) => setTimeout(resolve, calibrationQuietMs));
      for (const request of setup.calibration) {
        const sentAtMs = performance.now();
        calibration.push(record(request, startMs, await ask(setup, request), sentAtMs));
      }
    }
    return { records, calibration, uplinkBytes: after.uplinkBytes - before.uplinkBytes, downlinkBytes: after.downlinkBytes - before.downlinkBytes, durationMs };
  } finally {
    for (const stop of stops) await stop();
  }
}
