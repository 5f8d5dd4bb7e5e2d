/**
 * The edge agent of bench:video as a child process of its own (video-run.ts
 * forks it), so that the resident memory it samples every second is the
 * agent's alone: the benchmark, the link emulator and the cloud tier live in
 * other processes (ffmpeg, which the agent starts to decode, too). It starts
 * `EdgeAgent` with the config overrides it is given, then answers `run`
 * messages one at a time with what the benchmark reports, boiled down so the
 * chunk answers' embeddings never cross the IPC channel.
 */
import { EdgeAgent } from '../../edge/agent.js';
import { loadEdgeConfig } from '../../edge/config.js';
import type { AgentRequest, ChunkMessage } from '../../edge/request.js';
import { createLogger } from '../../shared/log.js';
import type { ChunkAnswer } from '../../shared/video/chunk.js';

/** What the parent sends: the clip file and how many seconds of it to read. */
export interface AgentRun {
  type: 'run';
  id: string;
  file: string;
  seconds: number;
}

export interface ChunkRecord {
  chunk: number;
  latencyMs: number | null;
  ran: string | null;
  /** Top label of the chunk (mean of its frames' probabilities); null when it has no answer. */
  label: string | null;
  frames: number;
  error: string | null;
  /** Milliseconds from the request's start to this chunk's message. */
  atMs: number;
}

export interface AgentRunResult {
  type: 'done';
  id: string;
  wallMs: number;
  error: string | null;
  chunks: ChunkRecord[];
  framesDecoded: number;
  framesKept: number;
  uplinkBytes: number;
  placed: Record<string, number>;
  /** The agent's own time for this video (VideoCounts.orchestrationMs) and the chunks it covers. */
  orchestrationMs: number;
  chunkCount: number;
  /** Resident set size, MB, at the start, every second while it ran, and at the end. */
  rssMb: number[];
}

const mb = () => Math.round((process.memoryUsage.rss() / 2 ** 20) * 10) / 10;

async function main(): Promise<void> {
  const overrides = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
  const agent = await EdgeAgent.start(loadEdgeConfig(undefined, overrides), createLogger('bench-video-agent', process.env.SPLITINFER_LOG_LEVEL ?? 'warn'));
  let queue = Promise.resolve();
  process.on('message', (message: AgentRun | { type: 'close' }) => {
    if (message.type === 'close') {
      void queue.then(() => agent.close()).then(() => process.exit(0));
      return;
    }
    queue = queue.then(() => runOne(agent, message)).then((result) => void process.send!(result));
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready' });
}

async function runOne(agent: EdgeAgent, run: AgentRun): Promise<AgentRunResult> {
  const before = agent.stats().video;
  const rssMb = [mb()];
  const sampler = setInterval(() => rssMb.push(mb()), 1000);
  const chunks: ChunkRecord[] = [];
  const started = performance.now();
  const request: AgentRequest = {
    id: run.id,
    inputs: { video: { source: `file://${run.file}`, seconds: run.seconds } },
    // The edge's INT8 model is allowed everywhere, so where a chunk runs is the strategy's choice alone.
    quality: { video: 'fast' },
  };
  const record = (message: ChunkMessage) => {
    const answer = message.results.video as ChunkAnswer | undefined;
    chunks.push({
      chunk: message.chunk,
      latencyMs: message.latencyMs ?? null,
      ran: message.placement.video?.ran ?? null,
      label: answer?.labels[0]?.label ?? null,
      frames: answer?.frames ?? 0,
      error: message.errors?.video ? `${message.errors.video.code}: ${message.errors.video.message}` : null,
      atMs: Math.round(performance.now() - started),
    });
  };
  const response = await agent.handle(request, record);
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  rssMb.push(mb());
  const after = agent.stats().video;
  const video = (response.results.video ?? {}) as { placed?: Record<string, number> };
  return {
    type: 'done',
    id: run.id,
    wallMs,
    error: response.errors?.video ? `${response.errors.video.code}: ${response.errors.video.message}` : null,
    chunks,
    framesDecoded: after.framesDecoded - before.framesDecoded,
    framesKept: after.framesKept - before.framesKept,
    uplinkBytes: after.uplinkBytes - before.uplinkBytes,
    placed: video.placed ?? {},
    orchestrationMs: after.orchestrationMs - before.orchestrationMs,
    chunkCount: after.chunks - before.chunks,
    rssMb,
  };
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
