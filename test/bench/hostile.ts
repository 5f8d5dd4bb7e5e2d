/**
 * `npm run bench:hostile`: what the hostile corpus (test/fixtures/hostile/)
 * costs everyone else. The real agent and cloud tier as child processes
 * behind real mosquitto (MQTT 5), on loopback. A well-behaved client asks a
 * text request every 100 ms, first alone (quiet), then while the corpus is
 * sent again and again (under attack), for the same number of requests.
 * Reports its p50/p95 in both phases (target: p95 under attack within 1.5×
 * of quiet) and the agent's peak RSS (VmHWM) against a stated budget.
 * Writes test/bench/results/hostile.{json,md} (--quick: 40 requests per
 * phase, to results/quick/).
 *
 *   npm run bench:hostile -- [--quick] [--out DIR]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freeLoopbackPort, startCloudChild } from '../../edge/local-stack.js';
import { packageRoot } from '../../shared/paths.js';
import { percentile } from '../../shared/percentile.js';
import { hostileMqttPayloads } from '../fixtures/hostile/corpus.js';
import { startEdgeChild } from '../helpers/edge-child.js';
import { connectClient, startMosquitto } from '../helpers/mqtt.js';
import { writeBenchFiles } from './write-results.js';

const { values } = parseArgs({ args: process.argv.slice(2), options: { quick: { type: 'boolean' }, out: { type: 'string' } } });
const requestsPerPhase = values.quick ? 40 : 150;
/** The agent's stated memory budget: the systemd unit's MemoryMax leaves room above this. */
const rssBudgetMb = 1024;
const targetRatio = 1.5;

const work = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-hostile-'));
const deviceId = `hostile-bench-${process.pid}`;
const broker = await startMosquitto(5);
const cloud = await startCloudChild({ port: await freeLoopbackPort(), extraArgs: ['--threads', '1', '--models', 'image-ocr,audio-vad,text-intent'] });
const agent = await startEdgeChild({ broker, deviceId, cloud: cloud.address, stateDir: path.join(work, 'agent-state') });
const client = await connectClient(broker);
const answered = new Map<string, () => void>();
client.on('message', (_topic, _payload, packet) => answered.get(packet.properties?.correlationData?.toString() ?? '')?.());
await client.subscribeAsync('hostile/replies/#', { qos: 1 });

let sequence = 0;
function send(payload: Buffer, responseTopic = 'hostile/replies/any'): { token: string; done: Promise<void> } {
  const token = `b-${++sequence}`;
  const done = new Promise<void>((resolve) => answered.set(token, resolve));
  void client.publishAsync(`splitinfer/v1/${deviceId}/req`, payload, { qos: 1, properties: { responseTopic, correlationData: Buffer.from(token) } });
  return { token, done };
}

async function bystander(count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await send(Buffer.from(JSON.stringify({ id: `calm-${i}`, inputs: { text: 'Where is my order?' } }))).done;
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return latencies;
}

function peakRssMb(pid: number): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return hwm ? Math.round(Number(hwm[1]) / 1024) : NaN;
}

const summary = (latencies: number[]) => ({ requests: latencies.length, p50Ms: Math.round(percentile(latencies, 0.5)! * 10) / 10, p95Ms: Math.round(percentile(latencies, 0.95)! * 10) / 10 });
try {
  const started = performance.now();
  await bystander(10);
  const quiet = summary(await bystander(requestsPerPhase));
  const rssQuietMb = peakRssMb(agent.process.pid!);
  const corpus = await hostileMqttPayloads(deviceId);
  let attacking = true;
  let corpusRounds = 0;
  let hostileSent = 0;
  const attack = (async () => {
    while (attacking) {
      for (const entry of corpus) {
        if (!attacking) break;
        const sent = Array.from({ length: entry.copies ?? 1 }, () => send(entry.payload, entry.responseTopic));
        hostileSent += sent.length;
        // A reply address that is refused gets nothing: do not wait for it.
        if (entry.expect !== 'none') await Promise.race([Promise.all(sent.map((s) => s.done)), new Promise((resolve) => setTimeout(resolve, 120_000))]);
      }
      corpusRounds++;
    }
  })();
  const underAttack = summary(await bystander(requestsPerPhase));
  attacking = false;
  await attack;
  const result = {
    requestsPerPhase,
    quiet,
    underAttack,
    p95Ratio: Math.round((underAttack.p95Ms / quiet.p95Ms) * 100) / 100,
    targetRatio,
    agentPeakRssMb: peakRssMb(agent.process.pid!),
    agentRssAfterQuietMb: rssQuietMb,
    rssBudgetMb,
    hostileRequestsSent: hostileSent,
    corpusRounds,
    corpusEntries: corpus.length,
    durationMs: Math.round(performance.now() - started),
    setup: { broker: 'mosquitto (MQTT 5)', agent: 'child process, default limits', cloud: 'child process, 1 ORT thread', cpus: os.cpus().length },
  };
  const markdown = `# Hostile corpus: what it costs other clients (\`npm run bench:hostile\`)

A well-behaved client asks a text request every 100 ms, ${requestsPerPhase} times alone (quiet),
then ${requestsPerPhase} times while the hostile corpus (${corpus.length} entries, test/fixtures/hostile/)
is sent again and again (${hostileSent} hostile requests in ${corpusRounds} full rounds and a partial one).
The agent and the cloud tier are child processes behind mosquitto (MQTT 5) on loopback; ${os.cpus().length} CPUs
shared with whatever else ran on the machine. Run took ${(result.durationMs / 1000).toFixed(1)} s.

| phase | requests | p50 (ms) | p95 (ms) |
| --- | ---: | ---: | ---: |
| quiet | ${quiet.requests} | ${quiet.p50Ms} | ${quiet.p95Ms} |
| under attack | ${underAttack.requests} | ${underAttack.p50Ms} | ${underAttack.p95Ms} |

p95 under attack / quiet: **${result.p95Ratio}×** (target ≤ ${targetRatio}×).
Agent peak RSS (VmHWM): **${result.agentPeakRssMb} MB** (${rssQuietMb} MB after the quiet phase; budget ${rssBudgetMb} MB).
`;
  const resultsDir = path.join(packageRoot, 'test', 'bench', 'results');
  const written = writeBenchFiles(values.out ?? (values.quick ? path.join(resultsDir, 'quick') : resultsDir), 'hostile', result, markdown);
  console.log(`quiet p95 ${quiet.p95Ms} ms, under attack p95 ${underAttack.p95Ms} ms (${result.p95Ratio}×, target ${targetRatio}×); agent peak RSS ${result.agentPeakRssMb} MB (budget ${rssBudgetMb} MB)`);
  console.log(`wrote ${path.relative(process.cwd(), written.json)} and ${path.relative(process.cwd(), written.markdown)}`);
} finally {
  await client.endAsync(true);
  await agent.kill('SIGTERM');
  await cloud.stop();
  await broker.stop();
  rmSync(work, { recursive: true, force: true });
}
