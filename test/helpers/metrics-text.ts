/**
 * What the tests need to read Prometheus metrics as Prometheus does: a
 * scrape over HTTP parsed from the text format, the metric names each tier's
 * registry exports, and the metric names a PromQL expression selects.
 */
import { createEdgeMetrics, registerEdgeState } from '../../edge/metrics.js';
import { createInferenceMetrics } from '../../shared/metrics.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** GETs a /metrics endpoint and parses its samples. */
export async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url}: HTTP ${response.status} ${await response.text()}`);
  return parseExposition(await response.text());
}

/** The Prometheus text format (version 0.0.4), as far as prom-client writes it. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of the samples of `name` whose labels include `labels` (0 when none). */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

export function has(samples: Sample[], name: string, labels: Record<string, string> = {}): boolean {
  return samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** Every series name the cloud's and the edge's registries export (histograms as _bucket/_sum/_count), and Prometheus's own `up`. */
export async function exportedMetricNames(): Promise<Set<string>> {
  const edge = createEdgeMetrics('names');
  registerEdgeState(edge, { circuit: () => 'closed', link: () => ({ rttAgeMs: 0, uplinkAgeMs: 0 }), inFlight: () => 0, journal: () => ({ entries: 0, fileBytes: 0 }),
    ingress: () => ({ received: 0, answered: 0, chunksPublished: 0, invalid: 0, refusedReplies: 0, inFlight: 0, duplicates: 0, replayed: 0, joined: 0, recovered: 0, expired: 0, overRequesterLimit: 0 }),
  });
  const names = new Set(['up']);
  for (const registry of [createInferenceMetrics().registry, edge.registry]) {
    for (const metric of await registry.getMetricsAsJSON()) {
      const type = String(metric.type);
      const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : [''];
      for (const suffix of suffixes) names.add(metric.name + suffix);
    }
  }
  return names;
}

const promqlWords = new Set([
  ...['sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group'],
  ...['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset'],
]);

/** The metric names an expression selects: identifiers that are not functions, operators, keywords or label names. */
export function selectedMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/(^|[^a-zA-Z0-9_:])\d+(\.\d+)?(e[+-]?\d+)?/gi, '$1 ');
  const names = [...stripped.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)].filter((m) => !m[2] && !promqlWords.has(m[1]!) && !/^\d/.test(m[1]!)).map((m) => m[1]!);
  return [...new Set(names)];
}
