/** edge.json and edge.md: the edge latency benchmark's numbers, and the same as Markdown tables. */
import type { EdgeBenchResults } from './edge-run.js';
import { writeBenchFiles } from './write-results.js';

const ms = (value: number | null) => (value === null || !Number.isFinite(value) ? '–' : value >= 100 ? `${Math.round(value)}` : `${value}`);

export function edgeMarkdown(results: EdgeBenchResults): string {
  const s = results.setup;
  const lines = [
    '# Edge latency benchmark',
    '',
    `${s.mode} run, ${results.generatedAt}, ${results.runSeconds} s; ${s.cpus} CPUs (load average ${s.loadAverageAtStart.join(' / ')} at start); node ${s.node}. Written by \`test/bench/edge.ts\`.`,
    '',
    `- **Agent**: ${s.agent}`,
    `- **Requester**: ${s.requester}`,
    `- **Inputs**: ${Object.values(s.inputs).join('; ')}`,
    ...results.notes.map((note) => `- **Note**: ${note}`),
    '',
    '## Targets',
    '',
    '| target | measured | |',
    '| --- | --- | --- |',
    ...results.targets.map((t) => `| ${t.target} | ${t.measured} | ${t.met ? 'met' : '**not met**'} |`),
    '',
    '## Round trips',
    '',
    'Milliseconds from just before the publish to the reply\'s arrival at the requester. **agent** is the agent\'s own `totalMs` for the task; **echo** an MQTT device that answers at once through the same broker (same payload, same requests in flight); ' +
      '**handler** the model handler alone (sessions on worker threads, as the agent runs them), **in-thread** the same handler with its sessions on the calling thread, **bare ORT** only its `session.run` calls with the same feeds (these three: one at a time, the image with the cloud\'s fp32 variant); ' +
      '**cloud** the cloud\'s queue + compute for offloaded tasks.',
    '',
    '| broker | modality | ran | in flight | RTT p50 | p95 | p99 | agent p50 | cloud p50 | handler | in-thread | bare ORT | echo p50 | req/s | failed |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.cases.map(
      (c) =>
        `| ${c.broker} | ${c.modality} | ${c.ran} | ${c.inFlight} | **${ms(c.rttP50Ms)}** | ${ms(c.rttP95Ms)} | ${ms(c.rttP99Ms)} | ${ms(c.agentTotalP50Ms)} | ${ms(c.cloudServerP50Ms)} | ${ms(c.handlerP50Ms)} | ${ms(c.handlerInThreadP50Ms)} | ${ms(c.bareOrtP50Ms)} | ${ms(c.echoP50Ms)} | ${c.requestsPerS} | ${c.failed}/${c.requests} |`,
    ),
    '',
    '## Model floors',
    '',
    '| modality | model | variant | session runs per input | handler p50 | in-thread p50 | bare ORT p50 |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: |',
    ...Object.entries(results.floors).map(([modality, f]) => `| ${modality} | ${f.model} | ${f.variant} | ${f.sessionRuns} | ${ms(f.handlerP50Ms)} | ${ms(f.handlerInThreadP50Ms)} | ${ms(f.bareOrtP50Ms)} |`),
    '',
    '## gRPC unary (ModelInfer, text-intent, one at a time)',
    '',
    'Overhead: round trip minus the server\'s `queue_us + compute_us`, per call. ServerLive (an empty call) is what grpc-js and HTTP/2 cost alone; the stream column sends the same requests one at a time on one open ModelStreamInfer stream, as the agent offloads.',
    '',
    '| calls | ServerLive p50 | round trip p50 | server queue + compute p50 | overhead p50 | overhead p95 | on a stream: overhead p50 |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${results.grpc.calls} | ${results.grpc.serverLiveP50Ms} | ${results.grpc.rttP50Ms} | ${results.grpc.serverP50Ms} | **${results.grpc.overheadP50Ms}** | ${results.grpc.overheadP95Ms} | ${results.grpc.streamOverheadP50Ms} |`,
    '',
  ];
  return lines.join('\n');
}

export function writeEdgeResults(dir: string, results: EdgeBenchResults): { json: string; markdown: string } {
  return writeBenchFiles(dir, 'edge', results, edgeMarkdown(results));
}
