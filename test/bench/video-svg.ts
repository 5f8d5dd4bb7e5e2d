/**
 * video.svg: per 720p clip and trace, each chunk's latency (last frame
 * decoded → message out) along the clip, one line per placement (dashed: the
 * slow edge), so a placement that falls behind shows as a climbing line.
 */
import type { ClipRow } from './video-run.js';

const colours: Record<string, string> = { adaptive: '#d62728', 'always-local': '#1f77b4', 'always-cloud': '#ff7f0e' };
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function chunkLatencySvg(rows: readonly ClipRow[], chunkSeconds: number): string {
  const runs = rows.filter((r) => r.resolution === '1280x720' && r.placement !== 'always-local' && r.link !== 'unlimited');
  const panels = [...new Set(runs.map((r) => `${r.name}|${r.link}`))].map((key) => {
    const [name, link] = key.split('|') as [string, string];
    // always-local uses no link: its one run is drawn in every panel of its clip.
    const series = rows.filter((r) => r.name === name && r.filterThreshold === runs[0]!.filterThreshold && (r.link === link || (r.placement === 'always-local' && r.link === 'unlimited')));
    return { title: `${name} on ${link}`, series };
  });
  const [panelW, panelH, left, top, gap] = [420, 200, 60, 76, 60];
  const width = left + panelW + 270;
  const height = top + panels.length * (panelH + gap);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="14" font-weight="bold">Chunk latency along the clip, per placement (720p, sampleFps 4)</text>`,
    `<text x="${left}" y="40" fill="#444444">x: media time of the chunk (s); y: last frame decoded → chunk message out (s); dashed: edge at a CPU quota</text>`,
  ];
  panels.forEach((panel, p) => {
    const y0 = top + p * (panelH + gap);
    const latencies = panel.series.flatMap((s) => s.chunkTimeline.map((c) => c.latencyMs ?? 0));
    const maxS = Math.max(1, Math.ceil(Math.max(...latencies) / 1000));
    const chunks = Math.max(...panel.series.map((s) => s.chunkTimeline.length), 2);
    const x = (i: number) => left + (i / (chunks - 1)) * panelW;
    const y = (ms: number) => y0 + panelH - (ms / 1000 / maxS) * panelH;
    parts.push(`<text x="${left}" y="${y0 - 8}" font-weight="bold">${escape(panel.title)}</text>`);
    parts.push(`<rect x="${left}" y="${y0}" width="${panelW}" height="${panelH}" fill="none" stroke="#999999"/>`);
    for (const tick of [0, maxS / 2, maxS]) {
      parts.push(`<text x="${left - 6}" y="${(y(tick * 1000) + 4).toFixed(1)}" text-anchor="end" fill="#444444">${tick}</text>`);
    }
    parts.push(`<text x="${left}" y="${y0 + panelH + 14}" fill="#444444">0</text>`, `<text x="${left + panelW}" y="${y0 + panelH + 14}" text-anchor="end" fill="#444444">${(chunks - 1) * chunkSeconds}</text>`);
    panel.series.forEach((s, k) => {
      const points = s.chunkTimeline.map((c, i) => `${x(i).toFixed(1)},${y(c.latencyMs ?? 0).toFixed(1)}`).join(' ');
      const dash = s.edgeCpuShare < 1 ? ' stroke-dasharray="5 3"' : '';
      parts.push(`<polyline points="${points}" fill="none" stroke="${colours[s.placement] ?? '#999999'}" stroke-width="1.8"${dash}><title>${escape(`${s.placement} edge ${s.edgeCpuShare}: RTF ${s.rtf}`)}</title></polyline>`);
      parts.push(`<text x="${left + panelW + 10}" y="${y0 + 12 + k * 15}" fill="${colours[s.placement] ?? '#999999'}">${escape(`${s.placement}${s.edgeCpuShare < 1 ? ` (edge ${s.edgeCpuShare})` : ''}: RTF ${s.rtf}`)}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
