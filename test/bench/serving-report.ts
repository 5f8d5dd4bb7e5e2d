/**
 * `bench:serving`'s report: serving.json (the numbers, with the fields the
 * issue names), serving.md (tables and how the run was set up) and
 * serving.svg (throughput–latency curves, batching off and on).
 */
import { writeBenchFiles } from './write-results.js';
import type { BatchingResult, ServingResults } from './serving-run.js';

const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');

export function servingMarkdown(r: ServingResults): string {
  const lines = [
    '# Serving benchmark (`npm run bench:serving`)',
    '',
    `${r.generatedAt}${r.quick ? ' (quick run)' : ''}; ${r.setup.cpus} CPUs (${r.setup.cpuModel}), load average at the end ${r.setup.loadAverage.join(' / ')}, Node ${r.setup.node}; ` +
      `the cloud tier a separate process on ${r.setup.providers.join(', ')} with ${r.setup.threads} ORT threads, load over gRPC ModelInfer from the benchmark's process; steps of ${r.setup.stepMs / 1000} s.`,
    '',
    '## Dynamic batching (open-loop Poisson, rising rates)',
    '',
    'Each side\'s best answered throughput among the steps whose p95 stayed within the bound (the same bound for both) and had no errors.',
    '',
    '| model | bound p95 | off: req/s | off: p95 | on: req/s | on: p95 | on / off | settings |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.batching.map(
      (b) => `| ${b.model} | ${b.p95BoundMs} ms | ${b.throughputOff} | ${b.p95OffMs} ms | ${b.throughputOn} | ${b.p95OnMs} ms | ${ratio(b.throughputOn, b.throughputOff)} | \`${JSON.stringify(b.settings)}\` |`,
    ),
    '',
    ...r.batching.flatMap((b) => [
      `### ${b.model}: every step`,
      '',
      '| batching | offered req/s | answered req/s | p50 | p95 | p99 | mean batch | errors |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...(['off', 'on'] as const).flatMap((side) =>
        (side === 'off' ? b.ladderOff : b.ladderOn).map(
          (s) => `| ${side} | ${s.offeredPerS} | ${s.throughputPerS} | ${s.p50Ms} ms | ${s.p95Ms} ms | ${s.p99Ms} ms | ${s.meanBatchSize} | ${s.errors}/${s.requests} |`,
        ),
      ),
      '',
    ]),
    '## Serving overhead against bare onnxruntime-node',
    '',
    'The raw graph through the server, one row per request batched to B (closed loop, 2·B in flight), against the same graph at [B, …] in a loop in one process.',
    '',
    '| graph | B | server rows/s | bare rows/s | server / bare | mean batch |',
    '| --- | --- | --- | --- | --- | --- |',
    ...r.overhead.map((o) => `| ${o.model} | ${o.batch} | ${o.serverThroughput} | ${o.bareThroughput} | ${ratio(o.serverThroughput, o.bareThroughput)} | ${o.meanBatchSize} |`),
    '',
    '## Response cache',
    '',
    `${r.cache.model}, closed loop with ${r.cache.concurrency} in flight, ${Math.round(r.cache.repeatRate * 100)}% of requests repeating an earlier one.`,
    '',
    '| hit p50 / p99 (server, under load) | hit p99 (server, hits alone) | hit p99 (client) | hit rate | req/s with cache | req/s without | with / without |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    `| ${r.cache.hitP50Us} / ${r.cache.hitP99Us} µs | ${r.cache.hitAloneP99Us} µs | ${r.cache.hitP99ClientMs} ms | ${r.cache.hitRate} | ${r.cache.throughputOn} | ${r.cache.throughputOff} | ${ratio(r.cache.throughputOn, r.cache.throughputOff)} |`,
    '',
    '## Fairness across tenants',
    '',
    `${r.fairness.model}: tenant B offers ${r.fairness.bOfferedPerS} req/s (open loop, 0.3× the closed-loop capacity of ${r.fairness.capacityPerS} req/s), alone and while tenant A offers ${r.fairness.aOfferedPerS} req/s (10×); ` +
      `each on its own channel and API key, ${r.fairness.rounds} alternating rounds pooled. Target: B's p95 within 1.3× of alone, no B errors.`,
    '',
    '| B p95 alone | B p95 flooded | flooded / alone | B errors | B p50 alone / flooded | without tenants: B p95 flooded, errors | A answered | A refused (RESOURCE_EXHAUSTED) | settings |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    `| ${r.fairness.bAloneP95Ms} ms | ${r.fairness.bFloodedP95Ms} ms | ${ratio(r.fairness.bFloodedP95Ms, r.fairness.bAloneP95Ms)} | ${r.fairness.bErrors}/${r.fairness.bFlooded.requests} | ` +
      `${r.fairness.bAlone.p50Ms} / ${r.fairness.bFlooded.p50Ms} ms | ${r.fairness.bFloodedWithoutTenants.p95Ms} ms, ${r.fairness.bFloodedWithoutTenants.errors}/${r.fairness.bFloodedWithoutTenants.requests} | ${r.fairness.aAnswered} | ${r.fairness.aRefused} | \`${JSON.stringify({ limits: r.fairness.settings.limits, tenants: (r.fairness.settings.auth as { tenants: unknown }).tenants })}\` |`,
    '',
    '## Where a request\'s time goes (per image, medians, in one process)',
    '',
    '| graph | JPEG decode (libuv threads) | resize to the input tensor (main thread) | session at batch 1 (worker) | session per image at batch 8 |',
    '| --- | --- | --- | --- | --- |',
    ...r.timeSplit.map((t) => `| ${t.model} | ${t.decodeMs} ms | ${t.resizeMs} ms | ${t.sessionMsBatch1} ms | ${t.sessionMsPerImageBatch8} ms |`),
    '',
    '## Reloads under load',
    '',
    `${r.reload.model}: RepositoryModelLoad called ${r.reload.reloads} times, one after another, while a closed loop kept ${r.reload.concurrency} requests in flight.`,
    '',
    '| reloads | requests | failed | reload p50 / max | request p95 |',
    '| --- | --- | --- | --- | --- |',
    `| ${r.reload.reloads} | ${r.reload.requests} | ${r.reload.failed} | ${r.reload.reloadMsP50} / ${r.reload.reloadMsMax} ms | ${r.reload.p95Ms} ms |`,
    '',
    ...(r.reload.failures.length > 0 ? ['Failures:', '', ...r.reload.failures.map((f) => `- ${f}`), ''] : []),
  ];
  if (r.notes.length > 0) lines.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e'];

/** p95 against answered throughput, one line per model and side, log latency axis. */
export function servingSvg(batching: readonly BatchingResult[]): string {
  const series = batching.flatMap((b) => [
    { name: `${b.model} off`, points: b.ladderOff, dashed: true },
    { name: `${b.model} on`, points: b.ladderOn, dashed: false },
  ]);
  const all = series.flatMap((s) => s.points).filter((p) => p.p95Ms > 0);
  const maxX = Math.max(...all.map((p) => p.throughputPerS), 1) * 1.1;
  const lowExp = Math.floor(Math.log10(Math.min(...all.map((p) => p.p95Ms), 10)));
  const highExp = Math.ceil(Math.log10(Math.max(...all.map((p) => p.p95Ms), 100)));
  const [left, top, w, h] = [70, 40, 560, 320];
  const x = (v: number) => left + (v / maxX) * w;
  const y = (ms: number) => top + h - ((Math.log10(ms) - lowExp) / (highExp - lowExp)) * h;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + w + 260}" height="${top + h + 50}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">p95 latency against answered throughput, dynamic batching off (dashed) and on</text>`,
  ];
  for (let exp = lowExp; exp <= highExp; exp++) {
    const ms = 10 ** exp;
    parts.push(`<line x1="${left}" x2="${left + w}" y1="${y(ms)}" y2="${y(ms)}" stroke="#dddddd"/>`, `<text x="${left - 6}" y="${y(ms) + 4}" text-anchor="end">${ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (maxX / 5) * i;
    parts.push(`<text x="${x(v)}" y="${top + h + 16}" text-anchor="middle">${v.toFixed(v < 10 ? 1 : 0)}</text>`);
  }
  parts.push(`<text x="${left + w / 2}" y="${top + h + 36}" text-anchor="middle">answered requests/s</text>`);
  series.forEach((s, i) => {
    const colour = palette[Math.floor(i / 2) % palette.length]!;
    const points = s.points.filter((p) => p.p95Ms > 0).map((p) => `${x(p.throughputPerS).toFixed(1)},${y(p.p95Ms).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${points.join(' ')}"/>`);
    parts.push(`<text x="${left + w + 20}" y="${top + 14 + i * 16}" fill="${colour}">${s.dashed ? '- -' : '—'} ${s.name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** The issue's fields first (throughput in requests/s), then everything measured. */
export function writeServingResults(dir: string, r: ServingResults): { json: string; markdown: string; all: string[] } {
  const json = {
    batching: r.batching.map(({ model, throughputOff, throughputOn, p95OffMs, p95OnMs, ...rest }) => ({ model, throughputOff, throughputOn, p95OffMs, p95OnMs, ...rest })),
    overhead: r.overhead,
    cache: r.cache,
    fairness: (({ bAloneP95Ms, bFloodedP95Ms, bErrors, ...rest }) => ({ bAloneP95Ms, bFloodedP95Ms, bErrors, ...rest }))(r.fairness),
    timeSplit: r.timeSplit,
    reload: (({ reloads, requests, failed, ...rest }) => ({ reloads, requests, failed, ...rest }))(r.reload),
    setup: { generatedAt: r.generatedAt, quick: r.quick, ...r.setup },
    notes: r.notes,
  };
  return writeBenchFiles(dir, 'serving', json, servingMarkdown(r), { 'serving.svg': servingSvg(r.batching) });
}
