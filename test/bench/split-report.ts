/** split.md: the split study's measurements and each bench:policy group's verdict, as tables. */
import { heldOutDescription } from '../../models/image-encoder/photo-like-images.js';
import type { GroupSplitVerdict, PlacementLatency, SweepCell } from './split-latency.js';
import type { SplitMeasurements } from './split-measure.js';

export interface SplitResults {
  setup: {
    mode: 'quick' | 'full';
    date: string;
    seconds: number;
    cpus: number;
    cpuModel: string;
    node: string;
    loadAverage: { before: number[]; after: number[] };
    tracesDir: string;
    windowS: number;
  };
  measurements: SplitMeasurements;
  verdicts: GroupSplitVerdict[];
  sweep: { rttMs: number; cells: SweepCell[] };
  /** Per group: edge-only, each JPEG option, each split point with its fastest encoding. */
  placements: Record<string, PlacementLatency[]>;
}

const sweepCell = (c: SweepCell) => (c.ratio < 1 ? `**${c.ratio}** (${c.bestSplit}, ${c.bestSplitMs} ms)` : `${c.ratio}`);

const kb = (bytes: number) => (bytes / 1024).toFixed(1);

export function splitMarkdown({ setup, measurements: m, verdicts, sweep }: SplitResults): string {
  const factors = [...new Set(sweep.cells.map((c) => c.edgeFactor))];
  const uplinks = [...new Set(sweep.cells.map((c) => c.uplinkMbps))];
  const wins = verdicts.filter((v) => v.splitBeatsBothEnds);
  const closest = verdicts.reduce((a, b) => (b.splitVsBestEnd < a.splitVsBestEnd ? b : a));
  const lines = [
    '# Layer split benchmark (InceptionV3)',
    '',
    `${setup.mode} run, ${setup.date}, ${setup.seconds} s; ${setup.cpus} CPUs (${setup.cpuModel}), load average ${setup.loadAverage.before.join(' / ')} at start, ${setup.loadAverage.after.join(' / ')} at the end; node ${setup.node}. Written by \`test/bench/split.ts\`.`,
    '',
    `- **Model**: models/image-encoder/inception-v3.fp32.onnx cut by \`splitinfer model split\` at the stem's output and at each mixed block's concatenation; every head → tail pair reproduces the whole model (max abs difference in the table).`,
    `- **Times**: onnxruntime-node on this CPU, one intra-op thread. At each point the whole model, the head and the tail take turns run by run for the rounds (their medians are the \`timed\` columns); head and tail are then given as their share of the whole model timed beside them × the whole model's median over all points (${m.wholeMs} ms), so a load change between points does not move them; the handler's pre-processing (decode, resize to 299 × 299) ${m.preprocessMs} ms; on the cloud, a 640 px JPEG's ${m.cloudPreprocessMs} ms.`,
    `- **Activation**: float32; INT8 = per-tensor affine UINT8 (min/max of the tensor) + 8 bytes of scale and offset; deflate (level 6) and brotli (quality 5) of the INT8 bytes; median over the ${m.images} evaluation images (models/image-encoder/photo-like-images.ts heldOutImages: ${heldOutDescription}). Pack = quantize (+ compress) on the edge, unpack = decompress + dequantize in the cloud, both on this CPU.`,
    `- **INT8 agreement**: the tail fed the dequantized activation against the whole model on the same image: share of images with the same top-1 label, and the cosine of the L2-normalised embeddings.`,
    `- **JPEG**: what cloud-only uploads, each image shaped by edge/offload/image-shaping.ts with the image-encoder catalog's options (accuracy cost from models/catalog.yaml); median bytes and edge shaping time (this CPU).`,
    `- **Groups**: bench:policy's (test/bench/groups.ts: trace sets in ${setup.tracesDir}, seed 1, RTT 20/80/200 ms, edge idle/busy, ratio 4×/8×), one request every ${0.25} s over the ${setup.windowS} s window. The edge is this CPU slowed by the ratio, and twice more when busy; the cloud is this CPU (one thread, as bench:policy's cloud). Latency = edge work × factor + upload at the trace's rate + RTT + cloud work.`,
    '',
    '## Verdict',
    '',
    wins.length === 0
      ? `**No split point beats both ends in any of the ${verdicts.length} groups.** The closest: ${closest.group}, ${closest.bestSplit.placement} p95 ${closest.bestSplit.p95Ms} ms against the better end's ${Math.min(closest.edgeOnly.p95Ms, closest.cloudOnly.p95Ms)} ms (${closest.splitVsBestEnd}×).`
      : `**A split beats both ends in ${wins.length} of ${verdicts.length} groups**: ${wins.map((v) => `${v.group} (${v.bestSplit.placement}, ${v.splitVsBestEnd}×)`).join('; ')}.`,
    '',
    '## Split points',
    '',
    '| cut | shape | head ms | tail ms | timed whole / head / tail ms | max abs diff | float32 KB | INT8 KB | deflate KB | brotli KB | pack ms (deflate / brotli) | INT8 top-1 | INT8 cosine mean (min) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...m.points.map((p) => {
      const e = p.encodings;
      return `| ${p.at} | ${p.dims.slice(1).join('×')} | ${p.headMs} | ${p.tailMs} | ${p.timedMs.whole} / ${p.timedMs.head} / ${p.timedMs.tail} | ${p.maxAbsDiff} | ${kb(e.float32.bytes)} | ${kb(e.int8.bytes)} | ${kb(e['int8-deflate'].bytes)} | ${kb(e['int8-brotli'].bytes)} | ${e['int8-deflate'].packMs} / ${e['int8-brotli'].packMs} | ${p.int8Agreement.top1} | ${p.int8Agreement.meanCosine} (${p.int8Agreement.minCosine}) |`;
    }),
    '',
    '## The JPEG instead',
    '',
    '| option | accuracy cost | KB | shaping ms |',
    '| --- | ---: | ---: | ---: |',
    ...m.jpeg.map((j) => `| ${j.name} | ${j.accuracyCost} | ${kb(j.bytes)} | ${j.shapeMs} |`),
    '',
    '## Per group (p95 ms; p50 in brackets)',
    '',
    '| group | edge × | uplink Mbit/s | edge-only | cloud-only 640px q90 | fastest cloud-only | best split | split / better end |',
    '| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |',
    ...verdicts.map(
      (v) =>
        `| ${v.group} | ${v.edgeFactor} | ${v.uplinkMeanMbps} | ${v.edgeOnly.p95Ms} (${v.edgeOnly.p50Ms}) | ${v.cloudOnly.p95Ms} (${v.cloudOnly.p50Ms}) | ${v.cloudOnlyFastest.placement.replace('cloud-only ', '')}: ${v.cloudOnlyFastest.p95Ms} (${v.cloudOnlyFastest.p50Ms}) | ${v.bestSplit.placement.replace('split ', '')}: ${v.bestSplit.p95Ms} (${v.bestSplit.p50Ms}) | ${v.splitBeatsBothEnds ? `**${v.splitVsBestEnd}**` : v.splitVsBestEnd} |`,
    ),
    '',
    '## Where a split could win',
    '',
    `Constant uplinks, RTT ${sweep.rttMs} ms, the edge at this CPU's speed (×1) and slower: best split / the better end (cloud-only at 640 px q90, edge-only); **bold** where the split wins, with the split that does.`,
    '',
    `| edge × | ${uplinks.map((u) => `${u} Mbit/s`).join(' | ')} |`,
    `| --- | ${uplinks.map(() => '---:').join(' | ')} |`,
    ...factors.map((f) => `| ${f} | ${uplinks.map((u) => sweepCell(sweep.cells.find((c) => c.edgeFactor === f && c.uplinkMbps === u)!)).join(' | ')} |`),
    '',
  ];
  return lines.join('\n');
}
