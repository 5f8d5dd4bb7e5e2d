/** policy.md: the benchmark's numbers as Markdown tables, with how the run was set up. */
import type { BenchResults, GroupResult } from './results.js';
import { plottedSeries } from './results.js';
import type { StepReport } from './step-scenario.js';

const ms = (value: number | null | undefined) => (value === null || value === undefined || !Number.isFinite(value) ? '–' : value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)}`);
const pct = (share: number | null | undefined) => (share === null || share === undefined ? '–' : `${(share * 100).toFixed(1)}%`);
const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
const yes = (met: boolean) => (met ? 'met' : '**not met**');

function targetsSection(results: BenchResults): string[] {
  const { adaptiveOverOracleP95: oracle, adaptiveOverBestStaticP95: statics, adaptiveMissWhereOracleMeetsAll: misses, stepAdaptation: step } = results.summary;
  const verdicts = step?.events.flatMap((e) => Object.entries(e.modalities).map(([modality, m]) => `${e.event}, ${modality}: ${m.verdict ?? 'no placement before'}${m.switchedAfterMs === null ? '' : ` (${m.switchedAfterMs} ms)`}`)) ?? [];
  const stepRow = step
    ? `| placement follows a link change within 2 s | ${verdicts.join('; ')} | ${yes(step.met)} |`
    : '| placement follows a link change within 2 s | – | not run |';
  if (results.groups.length === 0) return ['## Targets (issue 4)', '', '| target | measured | |', '| --- | --- | --- |', stepRow, ''];
  return [
    '## Targets (issue 4)',
    '',
    '| target | measured | |',
    '| --- | --- | --- |',
    `| adaptive p95 ≤ 1.15 × oracle p95 in every group | worst ${oracle.worst ?? '–'} × (${oracle.groups.map((g) => `${g.group}: ${g.ratio}`).join('; ')}) | ${yes(oracle.met)} |`,
    statics
      ? `| adaptive p95 ≤ 0.7 × best static p95, all groups pooled | ${statics.ratio} × (adaptive ${ms(statics.adaptiveP95Ms)} ms vs ${statics.bestStatic} ${ms(statics.bestStaticP95Ms)} ms) | ${yes(statics.met)} |`
      : '| adaptive p95 ≤ 0.7 × best static p95 | – | not measured |',
    misses.groups.length
      ? `| adaptive miss rate ≤ 1% where the oracle misses none | worst ${pct(misses.worst)} over ${misses.groups.length} group(s) | ${yes(misses.met)} |`
      : '| adaptive miss rate ≤ 1% where the oracle misses none | no group where the oracle missed none | – |',
    stepRow,
    '',
  ];
}

/** A group's heading and the conditions it ran under, with the edge/cloud ratio measured on the fixed OCR request. */
export function groupHeading(group: Pick<GroupResult, 'name' | 'conditions'>): string[] {
  const c = group.conditions;
  return [
    `### ${group.name}`,
    '',
    `trace \`${c.traceSet}/${c.trace}\` from ${c.traceOffsetS} s (mean ${c.uplinkMeanMbps} Mbit/s over the replay), RTT ${c.rttMs} ± ${c.jitterMs} ms, edge ${c.edgeLoad}, ` +
      `CPU quota ${c.dutyShare} (nominal ${c.nominalRatio}×); fixed OCR request (${c.fixedOcr.kind}): edge ${ms(c.fixedOcr.edgeComputeMs)} ms vs cloud ${ms(c.fixedOcr.cloudComputeMs)} ms = **${c.fixedOcr.ratio ?? '–'}×** measured`,
    '',
  ];
}

function groupsSection(results: BenchResults): string[] {
  const lines = [
    '## Results per group',
    '',
    'Latency from MQTT publish to reply, in ms; a failed request counts at least its deadline. Uplink: bytes the emulator delivered to the cloud tier during the replay (oracle: its share of the always-cloud replay).',
    '',
    '- **oracle**: per request, the faster of its latencies in the always-local and always-cloud replays. Each of those replays queues (the device, or the uplink, gets every task), so the oracle is not a lower bound: a policy that splits the load can beat it.',
    "- **static-profile** is given this group's own profile (median edge compute from the always-local replay, median cloud queue + compute from the always-cloud replay, mean payload at the default 1280 px / q85 shaping) at the trace set's median bandwidth and the group's RTT, so it only lacks the link's variation and the queues.",
    '- **confidence** escalates to the cloud when the edge result scores under `policy.confidenceThreshold` (default 0.8).',
    '',
  ];
  for (const group of results.groups) {
    lines.push(
      ...groupHeading(group),
      '| strategy | p50 | p95 | p99 | deadline miss | uplink MB | in cloud |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const name of plottedSeries) {
      const m = group.policies[name];
      if (!m) continue;
      lines.push(`| ${name === 'adaptive' ? '**adaptive**' : name} | ${ms(m.p50Ms)} | ${ms(m.p95Ms)} | ${ms(m.p99Ms)} | ${pct(m.deadlineMissRate)} | ${mb(m.uplinkBytes)} | ${pct(m.cloudShare)} |`);
    }
    lines.push('');
  }
  return lines;
}

export function stepSection(step: StepReport | null): string[] {
  if (!step) return [];
  const p = step.plan;
  const lines = [
    '## Step change (adaptive)',
    '',
    `A request every ${p.slotMs} ms (image-1280, text, audio in turn), RTT ${p.rttMs} ms; uplink ${p.beforeMbps} Mbit/s, ${p.afterMbps} Mbit/s from ${p.stepAtS} s` +
      `${p.recoverAtS !== undefined ? `, ${p.beforeMbps} Mbit/s again from ${p.recoverAtS} s` : ''}${p.outage ? `, outage ${p.outage.startS}–${p.outage.endS} s` : ''}; ends at ${p.endS} s. ` +
      '"Switched after": when the first request published after the event was placed on the other side than before (by the strategy, not by exploration, and not a cloud task retried on the edge after failing). ' +
      'The verdict judges in hindsight: the right side is the edge while the cloud is down, otherwise the side whose placements were answered faster (p50, a fallback counting for the cloud) after the event, by more than 15% (the policy\'s hysteresis; less is a tie) and with at least 2 placements on each side; ' +
      'the target fails only on a warranted switch that came late or never.',
    '',
    '| event | modality | side before | switched after | verdict | old side before switch | missed before switch | share on new side after | p50 before → after | p50 after by site | miss after |',
    '| --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- | --- | ---: |',
  ];
  for (const event of step.events) {
    for (const [modality, m] of Object.entries(event.modalities)) {
      lines.push(
        `| ${event.event} at ${event.atS} s | ${modality} | ${m.sideBefore ?? '–'} | ${m.switchedAfterMs === null ? 'no switch' : `${m.switchedAfterMs} ms`} | ${m.verdict ?? '–'} | ${m.placedOnOldSideBeforeSwitch} | ${m.missedBeforeSwitch} | ${pct(m.shareOnNewSideAfter)} | ${ms(m.p50BeforeMs)} → ${ms(m.p50AfterMs)} | ${Object.entries(m.p50AfterBySite).map(([site, v]) => `${site} ${ms(v)}`).join(', ') || '–'} | ${pct(m.missRateAfter)} |`,
      );
    }
  }
  lines.push('');
  return lines;
}

export function markdownReport(results: BenchResults): string {
  const s = results.setup;
  return [
    '# Placement policy benchmark',
    '',
    `${s.mode} run, ${results.generatedAt}, ${Math.round(results.runSeconds)} s; seed ${s.seed}; ${s.requestsPerReplay} requests per replay, Poisson arrivals every ${s.meanGapMs} ms on average; ${s.cpus} CPUs; node ${s.node}. Written by \`test/bench/policy.ts\`; the plot is \`policy.svg\`.`,
    '',
    `- **Workload**: ${JSON.stringify(s.requestMix)}`,
    `- **Cores**: ${s.pinning}`,
    `- **Edge/cloud ratio**: ${s.throttle}`,
    `- **Traces**: \`${s.tracesDir}\`, one trace per group picked by seed, replayed as the uplink capacity; the downlink is not limited.`,
    ...results.notes.map((note) => `- **Note**: ${note}`),
    '',
    ...targetsSection(results),
    ...stepSection(results.summary.stepAdaptation),
    ...groupsSection(results),
  ].join('\n');
}
