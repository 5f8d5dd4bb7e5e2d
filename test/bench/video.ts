/**
 * `npm run bench:video`: video through the real agent and cloud tier over
 * the link emulator (video-run.ts), on clips ffmpeg makes here: a fixed
 * camera with a few events and a moving scene, 720p30 and 1080p30. Writes
 * test/bench/results/video.json and video.md (--quick: results/quick/).
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadEdgeConfig } from '../../edge/config.js';
import { packageRoot } from '../../shared/paths.js';
import { loadBandwidthTraces, realTracesDir, traceStats, type BandwidthTrace } from '../helpers/bandwidth-trace.js';
import { throttlePeriodMs } from './groups.js';
import { openLog, pinSelf, planCores, runBenchmarkMain } from './processes.js';
import { benchClip, loopedClip, type BenchClip, type ResolutionName } from './video-inputs.js';
import { judge, writeVideoResults, type VideoBenchResults } from './video-report.js';
import { defaultFilterThreshold, describeCores, runVideoBenchmark, traceLink, unlimitedLink, type AgentSetup } from './video-run.js';

const sweepThresholds = [0.005, 0.01];
const slowEdgeShare = 0.125;

const help = `usage: node dist/test/bench/video.js [--quick] [--out DIR]

  --quick   720p only, 20 s clips, one trace (norway-3g), a 2-minute RSS stream (a few minutes)
  --out DIR where results go (default test/bench/results; results/quick for --quick)`;

/** The trace of a set whose mean rate is nearest the median of the set's means: a typical one, named in the report. */
function typicalTrace(set: string): BandwidthTrace {
  const traces = loadBandwidthTraces(path.join(realTracesDir, set));
  const means = traces.map((t) => traceStats(t).meanMbps);
  const median = [...means].sort((a, b) => a - b)[Math.floor(means.length / 2)]!;
  return traces[means.reduce((best, mean, i) => (Math.abs(mean - median) < Math.abs(means[best]! - median) ? i : best), 0)]!;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const started = performance.now();
  const quick = Boolean(values.quick);
  const cpus = os.availableParallelism();
  const cores = planCores();
  if (cores.cloudCore !== undefined) await pinSelf(cores.cloudCore);
  // Multiples of the fixed camera's 4 s event cycle (= one 16-frame chunk at 4 fps).
  const clipSeconds = quick ? 20 : 32;
  const streamMinutes = quick ? 2 : 10;
  const resolutionNames: ResolutionName[] = quick ? ['720p'] : ['720p', '1080p'];
  const traces = (quick ? ['norway-3g'] : ['norway-3g', 'oboe']).map(typicalTrace);
  const log = openLog(`video-${process.pid}`);
  console.log(`${quick ? 'quick' : 'full'} run; child logs in ${log.path}`);

  const clips: BenchClip[] = [];
  for (const resolution of resolutionNames) for (const scene of ['fixed-camera', 'moving'] as const) clips.push(await benchClip(scene, resolution, clipSeconds));
  // 20 s (a multiple of the fixed camera's 4 s event cycle) looped into the stream.
  const rssStream = await loopedClip(await benchClip('fixed-camera', '720p', 20), (streamMinutes * 60) / 20);
  console.log(`clips ready: ${[...clips, rssStream].map((c) => c.name).join(', ')}`);

  const traceLinks = traces.map(traceLink);
  const setups: AgentSetup[] = [
    { placement: 'always-local', filterThreshold: defaultFilterThreshold, links: [unlimitedLink] },
    { placement: 'always-local', filterThreshold: 0, links: [unlimitedLink] },
    { placement: 'always-cloud', filterThreshold: 0, links: [unlimitedLink] },
    { placement: 'always-cloud', filterThreshold: defaultFilterThreshold, links: traceLinks },
    { placement: 'adaptive', filterThreshold: defaultFilterThreshold, links: traceLinks },
    // What the default threshold trades (720p): lower ones on the edge, against the unfiltered run above.
    ...sweepThresholds.map((filterThreshold) => ({ placement: 'always-local' as const, filterThreshold, links: [unlimitedLink], clips: clips.filter((c) => c.resolution === '1280x720') })),
    // A slower device (a CPU quota on the agent), where the cloud is the faster side: 720p, each side alone and adaptive.
    ...(['always-local', 'always-cloud', 'adaptive'] as const).map((placement) => ({
      placement,
      filterThreshold: defaultFilterThreshold,
      edgeCpuShare: slowEdgeShare,
      links: placement === 'always-local' ? [unlimitedLink] : traceLinks,
      clips: clips.filter((c) => c.resolution === '1280x720'),
    })),
  ];
  const output = await runVideoBenchmark({ clips, setups, rssStream, cores, log, progress: (line) => console.log(line) });
  const config = loadEdgeConfig();
  const results: VideoBenchResults = {
    generatedAt: new Date().toISOString(),
    runSeconds: Math.round((performance.now() - started) / 1000),
    setup: {
      mode: quick ? 'quick' : 'full',
      cpus,
      node: process.version,
      clips: `${clips.map((c) => `${c.name} (${c.resolution})`).join(', ')}: ${clipSeconds} s each, 30 fps H.264 made by ffmpeg from photo-like stills with per-frame sensor noise (test/helpers/video-clips.ts); fixed camera: a still scene with a box crossing it for 1.5 s every 4 s; moving: a slow pan`,
      slowEdge: `rows with edge CPU ${slowEdgeShare}: the agent runs under cpu-throttle.js (SIGSTOP for all but ${slowEdgeShare} of every ${throttlePeriodMs} ms), a device about ${1 / slowEdgeShare}× slower; the ffmpeg it decodes with is not throttled`,
      agent: `video.sampleFps ${config.video.sampleFps}, chunkFrames ${config.video.chunkFrames}, decodeMaxSide ${config.video.decodeMaxSide}, chunksInFlight ${config.video.chunksInFlight}, filterThreshold ${defaultFilterThreshold} (0 for the unfiltered references); edge MobileNetV2 INT8, cloud InceptionV3 fp32 (one ORT thread); every request says quality fast so the INT8 model may answer wherever the strategy puts a chunk; default 10 s deadline per chunk; a fresh agent child per strategy × filter, running the clips in turn`,
      links: `uplink from ${traces.map((t) => `\`${t.name}\` (mean ${traceStats(t).meanMbps.toFixed(2)} Mbit/s)`).join(' and ')}, the trace of each set (test/fixtures/traces) whose mean is nearest the set's median, replayed from its start for every clip, RTT 80 ± 8 ms, downlink not limited; \`unlimited\`: no rate limit and no delay (runs whose chunks stay on the edge, and the unfiltered cloud reference)`,
      cores: describeCores(cores),
      orchestration: 'VideoCounts.orchestrationMs per chunk: the video runner\'s own synchronous code (per frame: counting and the frame filter\'s thumbnail and difference; per chunk: dispatch bookkeeping, building the chunk task, in-order emission, the clip summary\'s add, the chunk message and the publisher callback (the bench\'s records a few fields)) plus the task runner\'s own part (placement decision, estimators and strategy updates, the placement record). Not included: decode (ffmpeg and frame parsing), the models and their pre-processing, JPEG shaping for the cloud, the gRPC request and the link, and waiting (backpressure, chunk order)',
      rss: `resident set size of the agent's process (not the ffmpeg child it decodes with), sampled every second; the stream: ${rssStream.name}, always-local, default filter, on a fresh agent, read from the file as fast as the agent takes it (so in less than 10 minutes of wall time); growth = end minus when the chunk ending at 60 s of media went out`,
      allFramesJpeg: `every sampled frame (no filter) decoded as the agent does and JPEG-encoded at the default shaping (offload.imageMaxSide ${config.offload.imageMaxSide}, jpegQuality ${config.offload.jpegQuality})`,
    },
    ...judge(output, streamMinutes),
    clips: output.rows,
    rssStream: output.rssStream,
    notes: cores.unpinnedReason ? [cores.unpinnedReason] : [],
  };
  const resultsDir = path.join(packageRoot, 'test', 'bench', 'results');
  const written = writeVideoResults(values.out ?? (quick ? path.join(resultsDir, 'quick') : resultsDir), results);
  for (const t of results.targets) console.log(`${t.met === null ? 'NOT JUDGED' : t.met ? 'met' : 'NOT MET'}: ${t.target} — ${t.measured}`);
  console.log(`wrote ${path.relative(process.cwd(), written.json)} and ${path.relative(process.cwd(), written.markdown)} in ${results.runSeconds} s`);
  return 0;
}

runBenchmarkMain(main);
