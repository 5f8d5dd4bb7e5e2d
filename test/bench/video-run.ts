/**
 * One run of bench:video: the edge agent (a child process, video-agent.ts)
 * decodes clips from files and places their chunks; the cloud tier (a child
 * process, InceptionV3 on one ORT thread) answers through the link emulator,
 * which replays a real bandwidth trace from its start for every clip. Each
 * agent configuration (strategy × frame filter) gets a fresh agent that
 * runs every clip in turn; a last fresh agent streams the long fixed-camera
 * clip while its resident memory is sampled every second. video-report.ts
 * turns the rows into targets and tables.
 */
import type { ChildProcess } from 'node:child_process';
import type { WriteStream } from 'node:fs';
import path from 'node:path';
import { loadEdgeConfig } from '../../edge/config.js';
import { packageRoot } from '../../shared/paths.js';
import { percentile } from '../../shared/percentile.js';
import type { BandwidthTrace } from '../helpers/bandwidth-trace.js';
import { startLinkEmulator, type LinkConditions, type LinkEmulator } from '../helpers/link-emulator.js';
import { throttlePeriodMs } from './groups.js';
import { startCloudTier, startNodeChild, throttleChild, type CorePlan } from './processes.js';
import type { AgentRun, AgentRunResult, ChunkRecord } from './video-agent.js';
import { allFramesJpegBytes, type BenchClip } from './video-inputs.js';

const agentScript = path.join(packageRoot, 'dist', 'test', 'bench', 'video-agent.js');

export type Placement = 'always-local' | 'always-cloud' | 'adaptive';

/** One clip × placement × link × filter, as video.json reports it. */
export interface ClipRow {
  name: string;
  resolution: string;
  scene: string;
  placement: Placement;
  /** Share of its core the agent was given (1: all of it; less: cpu-throttle.js, a slower device). */
  edgeCpuShare: number;
  /** The uplink trace replayed, or `unlimited` (runs that use no link, and the unfiltered references). */
  link: string;
  filterThreshold: number;
  mediaSeconds: number;
  wallSeconds: number;
  /** Media seconds per wall second of the whole request. */
  rtf: number;
  /** RTF ≥ 1 with every chunk answered. */
  keepsUp: boolean;
  chunkP50Ms: number | null;
  chunkP95Ms: number | null;
  chunkMaxMs: number | null;
  orchestrationMsPerChunk: number;
  chunks: number;
  chunksFailed: number;
  placed: Record<string, number>;
  uplinkBytes: number;
  /** Bytes the emulator carried to the cloud tier (gRPC and HTTP/2 framing included). */
  linkUplinkBytes: number;
  allFramesJpegBytes: number;
  framesDecoded: number;
  framesKept: number;
  /** Share of the sampled frames the filter removed. */
  framesRemovedShare: number;
  /** Share of chunks whose top label equals that of the unfiltered run on the site the chunk ran on; null for the unfiltered runs. */
  labelAgreement: number | null;
  peakRssMb: number;
  /** RSS at the end minus at the start of the run (the long stream: minus when its first minute of media was answered). */
  rssGrowthMb: number;
  /** Per chunk, when its message went out (ms from the request) and its latency, for the plot. */
  chunkTimeline: { atMs: number; latencyMs: number | null; ran: string | null }[];
  error: string | null;
}

export interface AgentSetup {
  placement: Placement;
  filterThreshold: number;
  /** Below 1, the agent runs under a CPU quota of this share of its core. */
  edgeCpuShare?: number;
  /** The clips this agent runs; default all of the run's. */
  clips?: BenchClip[];
  /** The links to run every clip through. */
  links: { name: string; conditions: Partial<LinkConditions> }[];
}

export interface VideoRunOptions {
  clips: BenchClip[];
  setups: AgentSetup[];
  /** The RSS stream (always-local, default filter). */
  rssStream: BenchClip | null;
  cores: CorePlan;
  log: WriteStream;
  progress: (line: string) => void;
}

export interface VideoRunOutput {
  rows: ClipRow[];
  rssStream: (ClipRow & { rssSamplesMb: number[] }) | null;
}

/** A trace as the emulator's uplink, with the RTT Pensieve's simulator adds (README of the traces). */
export const traceLink = (trace: BandwidthTrace) => ({ name: trace.name, conditions: { uplink: trace, downlink: null, rttMs: 80, jitterMs: 8 } });
export const unlimitedLink = { name: 'unlimited', conditions: { uplink: null, downlink: null, rttMs: 0, jitterMs: 0 } };
export const defaultFilterThreshold: number = loadEdgeConfig().video.filterThreshold;

class AgentChild {
  private waiting = new Map<string, (result: AgentRunResult) => void>();

  private constructor(
    private readonly child: ChildProcess,
    private readonly unthrottle: (() => Promise<void>) | undefined,
  ) {
    child.on('message', (message: AgentRunResult) => {
      if (message.type === 'done') this.waiting.get(message.id)?.(message);
    });
  }

  /** Throttled from its first instruction, so its warm-up measures the slow device, as policy.ts's agents. */
  static async start(overrides: Record<string, unknown>, cpuShare: number, cores: CorePlan, log: WriteStream): Promise<AgentChild> {
    const child = startNodeChild(cores.edgeCore, agentScript, [JSON.stringify(overrides)], log);
    const unthrottle = cpuShare < 1 ? throttleChild(child, cpuShare, throttlePeriodMs, cores.cloudCore, log) : undefined;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the bench agent did not start within 180 s (log: ${log.path})`)), 180_000);
      child.once('message', () => (clearTimeout(timer), resolve()));
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`the bench agent exited with code ${code} while starting (log: ${log.path})`))));
    });
    child.removeAllListeners('exit');
    return new AgentChild(child, unthrottle);
  }

  run(clip: BenchClip, id: string): Promise<AgentRunResult> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the bench agent exited with code ${code} during ${id}`));
      this.child.once('exit', onExit);
      this.waiting.set(id, (result) => {
        this.waiting.delete(id);
        this.child.off('exit', onExit);
        resolve(result);
      });
      this.child.send({ type: 'run', id, file: clip.file, seconds: clip.seconds } satisfies AgentRun);
    });
  }

  async close(): Promise<void> {
    await this.unthrottle?.();
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ type: 'close' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

function toRow(clip: BenchClip, setup: AgentSetup, link: string, result: AgentRunResult, jpeg: { frames: number; bytes: number }, linkUplinkBytes: number): ClipRow {
  const latencies = result.chunks.map((c) => c.latencyMs).filter((v): v is number => v !== null);
  const failed = result.chunks.filter((c) => c.error !== null).length;
  const rtf = clip.seconds / (result.wallMs / 1000);
  return {
    name: clip.name,
    resolution: clip.resolution,
    scene: clip.scene,
    placement: setup.placement,
    edgeCpuShare: setup.edgeCpuShare ?? 1,
    link,
    filterThreshold: setup.filterThreshold,
    mediaSeconds: clip.seconds,
    wallSeconds: round(result.wallMs / 1000, 2),
    rtf: round(rtf, 2),
    keepsUp: rtf >= 1 && failed === 0 && result.error === null,
    chunkP50Ms: latencies.length ? round(percentile(latencies, 0.5)) : null,
    chunkP95Ms: latencies.length ? round(percentile(latencies, 0.95)) : null,
    chunkMaxMs: latencies.length ? round(Math.max(...latencies)) : null,
    orchestrationMsPerChunk: round(result.orchestrationMs / Math.max(1, result.chunkCount), 3),
    chunks: result.chunkCount,
    chunksFailed: failed,
    placed: result.placed,
    uplinkBytes: result.uplinkBytes,
    linkUplinkBytes,
    allFramesJpegBytes: jpeg.bytes,
    framesDecoded: result.framesDecoded,
    framesKept: result.framesKept,
    framesRemovedShare: round(1 - result.framesKept / Math.max(1, result.framesDecoded), 3),
    labelAgreement: null,
    peakRssMb: Math.max(...result.rssMb),
    rssGrowthMb: round(result.rssMb.at(-1)! - result.rssMb[0]!),
    chunkTimeline: result.chunks.map((c) => ({ atMs: c.atMs, latencyMs: c.latencyMs, ran: c.ran })),
    error: result.error,
  };
}

/** Per chunk, the top label of the unfiltered run on the site the chunk ran on; the share that match. */
function agreement(chunks: readonly ChunkRecord[], references: Partial<Record<string, readonly ChunkRecord[]>>): number | null {
  const compared = chunks.filter((c) => c.label !== null && c.ran !== null && references[c.ran]);
  if (compared.length === 0) return null;
  const same = compared.filter((c) => references[c.ran!]!.find((r) => r.chunk === c.chunk)?.label === c.label).length;
  return round(same / compared.length, 3);
}

export async function runVideoBenchmark(options: VideoRunOptions): Promise<VideoRunOutput> {
  const { clips, setups, cores, log, progress } = options;
  const config = loadEdgeConfig();
  const jpeg = new Map<string, { frames: number; bytes: number }>();
  for (const clip of clips) jpeg.set(clip.name, await allFramesJpegBytes(clip, config));
  const cloud = await startCloudTier(cores.cloudCore, log, ['video-encoder']);
  let emulator: LinkEmulator | undefined;
  const rows: ClipRow[] = [];
  const chunkRecords = new Map<ClipRow, ChunkRecord[]>();
  let rssStream: VideoRunOutput['rssStream'] = null;
  try {
    emulator = await startLinkEmulator({ targetPort: Number(cloud.address.split(':').pop()), seed: 1 });
    const sources = [...new Set([...clips, ...(options.rssStream ? [options.rssStream] : [])].map((c) => `file://${path.dirname(c.file)}/`))];
    const overridesOf = (placement: Placement, filterThreshold: number) => ({
      cloud: emulator!.address,
      policy: { strategy: placement },
      video: { filterThreshold, sources },
    });
    for (const setup of setups) {
      const agent = await AgentChild.start(overridesOf(setup.placement, setup.filterThreshold), setup.edgeCpuShare ?? 1, cores, log);
      try {
        for (const link of setup.links) {
          for (const clip of setup.clips ?? clips) {
            emulator.setConditions(link.conditions);
            const before = emulator.stats().uplinkBytes;
            const result = await agent.run(clip, `${clip.name}-${setup.placement}-${link.name}-f${setup.filterThreshold}`);
            const row = toRow(clip, setup, link.name, result, jpeg.get(clip.name)!, emulator.stats().uplinkBytes - before);
            rows.push(row);
            chunkRecords.set(row, result.chunks);
            progress(`${row.name} ${row.placement}${row.edgeCpuShare < 1 ? ` (edge at ${row.edgeCpuShare} of a core)` : ''} link ${row.link} filter ${row.filterThreshold}: RTF ${row.rtf}, chunk p50 ${row.chunkP50Ms} ms, kept ${row.framesKept}/${row.framesDecoded}, orchestration ${row.orchestrationMsPerChunk} ms/chunk${row.error ? `, error ${row.error}` : ''}`);
          }
        }
      } finally {
        await agent.close();
      }
    }
    for (const row of rows) {
      if (row.filterThreshold === 0) continue;
      const reference = (site: string) => {
        const placement = site === 'edge' ? 'always-local' : 'always-cloud';
        const match = rows.find((r) => r.name === row.name && r.placement === placement && r.filterThreshold === 0 && r.edgeCpuShare === 1);
        return match && chunkRecords.get(match);
      };
      row.labelAgreement = agreement(chunkRecords.get(row)!, { edge: reference('edge'), cloud: reference('cloud') });
    }
    if (options.rssStream) {
      const clip = options.rssStream;
      const setup: AgentSetup = { placement: 'always-local', filterThreshold: defaultFilterThreshold, links: [unlimitedLink] };
      const agent = await AgentChild.start(overridesOf(setup.placement, setup.filterThreshold), 1, cores, log);
      try {
        emulator.setConditions(unlimitedLink.conditions);
        progress(`RSS stream: ${clip.name} (${clip.seconds} s of media) on a fresh always-local agent`);
        const result = await agent.run(clip, `${clip.name}-rss`);
        const row = toRow(clip, setup, unlimitedLink.name, result, { frames: result.framesDecoded, bytes: 0 }, 0);
        // The first minute of media holds the warm-up (buffers, pools, JIT); growth is what comes after. The file is
        // read faster than real time, so that minute ends when the chunk ending at 60 s of media went out.
        const chunkSeconds = config.video.chunkFrames / config.video.sampleFps;
        const firstMinuteAtMs = result.chunks.find((c) => c.chunk === Math.ceil(60 / chunkSeconds) - 1)?.atMs ?? 0;
        const afterFirstMinute = result.rssMb[Math.min(Math.ceil(firstMinuteAtMs / 1000), result.rssMb.length - 1)]!;
        row.rssGrowthMb = round(result.rssMb.at(-1)! - afterFirstMinute);
        rssStream = { ...row, rssSamplesMb: result.rssMb };
        progress(`RSS stream: peak ${row.peakRssMb} MB, growth after the first minute ${row.rssGrowthMb} MB, RTF ${row.rtf}`);
      } finally {
        await agent.close();
      }
    }
  } finally {
    await emulator?.close();
    await cloud.stop();
  }
  return { rows, rssStream };
}

/** How the processes sit on the cores, in words. */
export function describeCores(cores: CorePlan): string {
  return cores.unpinnedReason ?? `cloud tier, this process (link emulator) on core ${cores.cloudCore}; the agent (and the ffmpeg it starts) on core ${cores.edgeCore} (taskset)`;
}
