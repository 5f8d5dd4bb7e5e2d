/**
 * The benchmark's plot, written by hand as SVG: p95 latency per strategy per
 * group as grouped bars on a log scale (the strategies differ by orders of
 * magnitude when the link or the device is the bottleneck).
 */
import type { PolicyMetrics } from './metrics.js';

export interface PlotGroup {
  name: string;
  policies: Partial<Record<string, PolicyMetrics>>;
}

const colours: Record<string, string> = {
  adaptive: '#d62728',
  'always-local': '#1f77b4',
  'always-cloud': '#ff7f0e',
  confidence: '#2ca02c',
  'static-profile': '#9467bd',
  oracle: '#555555',
};

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function p95Svg(groups: readonly PlotGroup[], series: readonly string[], title: string): string {
  const values = groups.flatMap((g) => series.map((s) => g.policies[s]?.p95Ms)).filter((v): v is number => v !== undefined && v > 0);
  const lowExp = Math.floor(Math.log10(Math.min(...values, 100)));
  const highExp = Math.ceil(Math.log10(Math.max(...values, 1000)));
  const barWidth = 12;
  const groupWidth = series.length * barWidth + 18;
  const [left, top, plotHeight, labelSpace] = [70, 64, 320, 150];
  const width = Math.max(left + groups.length * groupWidth + 20, left + series.length * 110 + 20);
  const height = top + plotHeight + labelSpace;
  const y = (ms: number) => top + plotHeight - ((Math.log10(ms) - lowExp) / (highExp - lowExp)) * plotHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
  ];
  for (let exp = lowExp; exp <= highExp; exp++) {
    for (const mantissa of exp < highExp ? [1, 2, 5] : [1]) {
      const ms = mantissa * 10 ** exp;
      const label = ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
      parts.push(`<line x1="${left}" x2="${width - 20}" y1="${y(ms).toFixed(1)}" y2="${y(ms).toFixed(1)}" stroke="${mantissa === 1 ? '#bbbbbb' : '#eeeeee'}"/>`);
      parts.push(`<text x="${left - 6}" y="${(y(ms) + 4).toFixed(1)}" text-anchor="end" fill="#444444">${label}</text>`);
    }
  }
  parts.push(`<text transform="translate(16 ${top + plotHeight / 2}) rotate(-90)" text-anchor="middle">p95 latency (log scale)</text>`);
  groups.forEach((group, g) => {
    const x0 = left + g * groupWidth + 9;
    series.forEach((name, s) => {
      const metrics = group.policies[name];
      if (!metrics || !(metrics.p95Ms > 0)) return;
      const barTop = y(metrics.p95Ms);
      const tip = `${group.name} ${name}: p95 ${Math.round(metrics.p95Ms)} ms, miss ${(metrics.deadlineMissRate * 100).toFixed(1)}%`;
      parts.push(
        `<rect x="${x0 + s * barWidth}" y="${barTop.toFixed(1)}" width="${barWidth - 1}" height="${(top + plotHeight - barTop).toFixed(1)}" fill="${colours[name] ?? '#999999'}"><title>${escape(tip)}</title></rect>`,
      );
    });
    const labelX = x0 + (series.length * barWidth) / 2;
    parts.push(`<text transform="translate(${labelX} ${top + plotHeight + 10}) rotate(40)" fill="#222222">${escape(group.name)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${width - 20}" y1="${top + plotHeight}" y2="${top + plotHeight}" stroke="#000000"/>`);
  series.forEach((name, s) => {
    const x = left + s * 110;
    parts.push(`<rect x="${x}" y="30" width="10" height="10" fill="${colours[name] ?? '#999999'}"/>`, `<text x="${x + 14}" y="39">${escape(name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
