/**
 * policy-encoder.{json,md,svg}: the encoder workload's run (issue 10), kept
 * apart from policy.* so that running one workload never overwrites the
 * other's results.
 */
import type { EncoderGroupOutcome, EncoderPolicyMetrics, EncoderTargetSummary, FloorClassAgreement } from './encoder-metrics.js';
import { floorName } from './encoder-metrics.js';
import { floorValue } from './encoder-workload.js';
import type { StrategyName } from './metrics.js';
import { groupHeading } from './report-markdown.js';
import { p95Svg } from './report-svg.js';
import { plottedSeries, type GroupConditions, type RunSetup } from './results.js';
import { writeBenchFiles } from './write-results.js';

export interface EncoderRunSetup extends RunSetup {
  floorMix: unknown;
  imageSource: string;
  images: number;
  /** The light variant's top-1 agreement with the heavy one on the workload's images, and the catalog's figure the edge's floor check reads. */
  lightAgreement: number;
  catalogAgreement: number;
}

export interface EncoderGroupResult extends EncoderGroupOutcome {
  conditions: GroupConditions;
}

export interface EncoderBenchResults {
  generatedAt: string;
  runSeconds: number;
  setup: EncoderRunSetup;
  groups: EncoderGroupResult[];
  summary: EncoderTargetSummary;
  notes: string[];
}

const ms = (value: number | null | undefined) => (value === null || value === undefined || !Number.isFinite(value) ? '–' : value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)}`);
const pct = (share: number | null | undefined) => (share === null || share === undefined ? '–' : `${(share * 100).toFixed(1)}%`);
const share = (value: number | null | undefined) => (value === null || value === undefined ? '–' : value.toFixed(3));
const yes = (met: boolean) => (met ? 'met' : '**not met**');

/** Floor classes pooled over groups, each weighted by the requests it answered. */
export function pooledByFloor(groups: readonly EncoderGroupOutcome[], strategy: StrategyName | 'oracle'): FloorClassAgreement[] {
  const classes = new Map<string, FloorClassAgreement & { weights: number }>();
  for (const group of groups) {
    for (const cls of group.policies[strategy]?.byFloor ?? []) {
      const key = floorName(cls.floor);
      const sum = classes.get(key) ?? { floor: cls.floor, requests: 0, answered: 0, lightShare: 0, modelAgreement: 0, labelAgreement: 0, weights: 0 };
      sum.requests += cls.requests;
      sum.answered += cls.answered;
      if (cls.answered > 0) {
        sum.lightShare! += cls.lightShare! * cls.answered;
        sum.modelAgreement! += cls.modelAgreement! * cls.answered;
        sum.labelAgreement! += cls.labelAgreement! * cls.answered;
        sum.weights += cls.answered;
      }
      classes.set(key, sum);
    }
  }
  const averaged = (total: number | null, weights: number) => (weights > 0 ? Math.round((total! / weights) * 1000) / 1000 : null);
  return [...classes.values()].map(({ weights, ...c }) => ({ ...c, lightShare: averaged(c.lightShare, weights), modelAgreement: averaged(c.modelAgreement, weights), labelAgreement: averaged(c.labelAgreement, weights) }));
}

function targetsSection(results: EncoderBenchResults): string[] {
  const { adaptiveOverOracleP95: oracle, adaptiveAgreementMeetsFloor: floors } = results.summary;
  if (results.groups.length === 0) return [];
  const shortfalls = floors.shortfalls.map((s) => `${s.group} ${s.floor}: ${s.modelAgreement} < ${s.floorValue}`).join('; ');
  return [
    '## Targets (issue 10)',
    '',
    '| target | measured | |',
    '| --- | --- | --- |',
    `| adaptive p95 ≤ 1.15 × oracle p95 in every group | worst ${oracle.worst ?? '–'} × (${oracle.groups.map((g) => `${g.group}: ${g.ratio}`).join('; ')}) | ${yes(oracle.met)} |`,
    `| adaptive's agreement ≥ the request's floor, per floor class in every group | ${floors.shortfalls.length === 0 ? `no shortfall in ${floors.checked} class(es)` : shortfalls} | ${yes(floors.met)} |`,
    '',
  ];
}

function floorSection(results: EncoderBenchResults): string[] {
  const { lightAgreement, catalogAgreement } = results.setup;
  const lines = [
    '## Agreement per floor class (all groups pooled)',
    '',
    `Per class: model agreement (what the floor promises: a heavy answer 1, a light one the light variant's agreement measured on this workload's images, **${lightAgreement}**; the edge's floor check reads the catalog's ${catalogAgreement}), ` +
      'then in brackets the label agreement as measured (the answer\'s top-1 against the heavy model\'s on the unshaped image: a heavy answer from a shrunk upload can differ), then the share the light variant answered. ' +
      'A numeric floor is met when the model agreement reaches it; `fast` asks for nothing, `best` for the heavy model itself (1).',
    '',
    `| strategy | ${results.groups[0]?.policies.adaptive?.byFloor.map((c) => `floor ${floorName(c.floor)}`).join(' | ') ?? ''} |`,
    `| --- | ${(results.groups[0]?.policies.adaptive?.byFloor ?? []).map(() => '---').join(' | ')} |`,
  ];
  for (const name of plottedSeries) {
    const classes = pooledByFloor(results.groups, name);
    if (classes.length === 0) continue;
    const cell = (c: FloorClassAgreement) =>
      c.answered === 0
        ? `– (${c.requests} requests, none answered)`
        : `${share(c.modelAgreement)}${c.modelAgreement! < floorValue(c.floor) ? ' **below**' : ''} (${share(c.labelAgreement)}), light ${pct(c.lightShare)}, n=${c.answered}`;
    lines.push(`| ${name === 'adaptive' ? '**adaptive**' : name} | ${classes.map(cell).join(' | ')} |`);
  }
  lines.push('');
  return lines;
}

function groupsSection(results: EncoderBenchResults): string[] {
  const lines = [
    '## Results per group',
    '',
    'Latency from MQTT publish to reply, in ms; a failed request counts at least its deadline. Uplink: bytes the emulator delivered to the cloud tier during the replay (oracle: its share of the replays it takes its answers from).',
    '',
    "- **oracle**: per request, the faster of its latencies in the always-local and always-cloud replays, of those whose answer meets the request's floor: a light answer only where the floor is `fast` or a number the light variant's measured agreement on this set reaches; otherwise the heavy answer. (A floor above the catalog's agreement sends the task to the cloud in both replays: the constraint step runs before every strategy.) Each replay queues on its one side, so the oracle is not a lower bound.",
    "- Every agent holds the reference too (`localReference`), loaded on the first task that needs it. **always-local** answers with the light variant wherever the floor lets it, and with the reference on the edge where it does not (in the cloud until the reference has loaded); **always-cloud** with the heavy variant at the default shaping (the config's 1280 px capped at the encoder's largest declared side: 640 px, JPEG q85); **adaptive** weighs the light and the reference variant on the edge against the cloud, and shapes cloud uploads down to the catalog's 640/480/320 px × q90/75/50 options within `policy.accuracyFloor` raised to the request's floor (`best`: no loss).",
    "- **static-profile** gets this group's profile of the image (median light compute on the edge, median heavy queue + compute in the cloud, mean upload at the default shaping) at the trace set's median bandwidth and the group's RTT; since the strategy keeps profiles of each modality's default task only, the bench hands it the side the profile picks as `modalities.image.encode.placement`, which it then keeps.",
    '- **confidence** answers on the edge first and asks the heavy model when the light top-1 score is under `policy.confidenceThreshold` (0.8).',
    '',
  ];
  for (const group of results.groups) {
    const oracleP95 = group.policies.oracle?.p95Ms;
    lines.push(
      ...groupHeading(group),
      '| strategy | p50 | p95 | p95 / oracle | deadline miss | uplink MB | in cloud | light answers | model agreement | label agreement |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const name of plottedSeries) {
      const m: EncoderPolicyMetrics | undefined = group.policies[name];
      if (!m) continue;
      const ratio = oracleP95 ? (m.p95Ms / oracleP95).toFixed(2) : '–';
      lines.push(
        `| ${name === 'adaptive' ? '**adaptive**' : name} | ${ms(m.p50Ms)} | ${ms(m.p95Ms)} | ${ratio} | ${pct(m.deadlineMissRate)} | ${(m.uplinkBytes / 1e6).toFixed(2)} | ${pct(m.cloudShare)} | ${pct(m.lightShare)} | ${share(m.modelAgreement)} | ${share(m.labelAgreement)} |`,
      );
    }
    lines.push('');
  }
  return lines;
}

export function encoderMarkdown(results: EncoderBenchResults): string {
  const s = results.setup;
  return [
    '# Placement policy benchmark: image encoder',
    '',
    `${s.mode} run, ${results.generatedAt}, ${Math.round(results.runSeconds)} s; seed ${s.seed}; ${s.requestsPerReplay} requests per replay, Poisson arrivals every ${s.meanGapMs} ms on average; ${s.cpus} CPUs; node ${s.node}. ` +
      'Written by `test/bench/policy.ts --workload encoder` (part of a full run); the plot is `policy-encoder.svg`; the OCR workload\'s results are `policy.md`.',
    '',
    `- **Workload**: \`task.image: encode\` requests, ${JSON.stringify(s.requestMix)}; floors ${JSON.stringify(s.floorMix)}`,
    `- **Images**: ${s.images} (${s.imageSource}, each scene at every size with seeded grain, JPEG q90); the heavy (fp32 InceptionV3) and light (INT8 MobileNetV2) top-1 labels of each were computed once in the benchmark's process; the light variant agrees on **${s.lightAgreement}** of them (catalog: ${s.catalogAgreement}).`,
    `- **Cores**: ${s.pinning}`,
    `- **Edge/cloud ratio**: ${s.throttle}`,
    `- **Traces**: \`${s.tracesDir}\`, one trace per trace set picked by seed (the OCR groups' trace; the offset into it depends on the replay length), replayed as the uplink capacity; the downlink is not limited.`,
    ...results.notes.map((note) => `- **Note**: ${note}`),
    '',
    ...targetsSection(results),
    ...floorSection(results),
    ...groupsSection(results),
  ].join('\n');
}

export function writeEncoderResults(dir: string, results: EncoderBenchResults): string[] {
  const svg: Record<string, string> = results.groups.length > 0 ? { 'policy-encoder.svg': p95Svg(results.groups, plottedSeries, `image encoder: p95 latency per strategy per group (${results.setup.mode} run)`) } : {};
  return writeBenchFiles(dir, 'policy-encoder', results, encoderMarkdown(results), svg).all;
}
