/**
 * `npm run bench:hostile`: what the hostile corpus (test/fixtures/hostile/)
 * costs everyone else. The real agent and cloud tier as child processes
 * behind real mosquitto (MQTT 5), on loopback. A well-behaved client asks a
 * text request every 100 ms, first alone (quiet), then while the corpus is
 * sent again and again (under attack), for the same number of requests.
 * Reports its p50/p95 in both phases (target: p95 under attack within 1.5×
 * of quiet) and the agent's peak RSS (VmHWM) against a stated budget, for
 * the default config and with limits.maxConcurrentPerRequester 4 (the
 * attacker and the bystander use different reply topics, so that limit
 * tells them apart). Writes test/bench/results/hostile.{json,md}
 * (--quick: 40 requests per phase, to results/quick/).
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

const perRequesterLimits = [0, 4];
const work = mkdtempSync(path.join(os.tmpdir(), 'splitinfer-hostile-'));
const deviceId = `hostile-bench-${process.pid}`;
const broker = await startMosquitto(5);
const cloud = await startCloudChild({ port: await freeLoopbackPort(), extraArgs: ['--threads', '1', '--models', 'image-ocr,audio-vad,text-intent'] });
// The attacker and the bystander have connections of their own, so the bystander's requests do not queue behind the attack's in one socket.
const attacker = await connectClient(broker);
const calm = await connectClient(broker);
const answered = new Map<string, () => void>();
for (const client of [attacker, calm]) client.on('message', (_topic, _payload, packet) => answered.get(packet.properties?.correlationData?.toString() ?? '')?.());
await attacker.subscribeAsync('hostile/replies/#', { qos: 1 });
await calm.subscribeAsync('calm/replies', { qos: 1 });

let sequence = 0;
function send(payload: Buffer, responseTopic = 'hostile/replies/any', client = attacker): { token: string; done: Promise<void> } {
  const token = `b-${++sequence}`;
  const done = new Promise<void>((resolve) => answered.set(token, resolve));
  void client.publishAsync(`splitinfer/v1/${deviceId}/req`, payload, { qos: 1, properties: { responseTopic, correlationData: Buffer.from(token) } });
  return { token, done };
}

async function bystander(count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await send(Buffer.from(JSON.stringify({ id: `calm-${sequence}`, inputs: { text: 'Where is my order?' } })), 'calm/replies', calm).done;
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
const corpus = await hostileMqttPayloads(deviceId);

async function measure(maxConcurrentPerRequester: number) {
  const agent = await startEdgeChild({
    broker,
    deviceId,
    cloud: cloud.address,
    stateDir: path.join(work, `agent-state-${maxConcurrentPerRequester}`),
    config: { limits: { maxConcurrentPerRequester } },
  });
  try {
    const started = performance.now();
    await bystander(10);
    const quiet = summary(await bystander(requestsPerPhase));
    const rssQuietMb = peakRssMb(agent.process.pid!);
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
    return {
      maxConcurrentPerRequester,
      quiet,
      underAttack,
      p95Ratio: Math.round((underAttack.p95Ms / quiet.p95Ms) * 100) / 100,
      agentPeakRssMb: peakRssMb(agent.process.pid!),
      agentRssAfterQuietMb: rssQuietMb,
      hostileRequestsSent: hostileSent,
      corpusRounds,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await agent.kill('SIGTERM');
  }
}

try {
  const runs = [];
  for (const limit of perRequesterLimits) runs.push(await measure(limit));
  const result = {
    requestsPerPhase,
    targetRatio,
    rssBudgetMb,
    corpusEntries: corpus.length,
    runs,
    setup: { broker: 'mosquitto (MQTT 5)', agent: 'child process, default limits unless named', cloud: 'child process, 1 ORT thread', cpus: os.cpus().length, loadAverage: os.loadavg().map((l) => Math.round(l * 10) / 10) },
  };
  const rows = runs
    .map((r) => {
      const config = r.maxConcurrentPerRequester === 0 ? 'defaults' : `maxConcurrentPerRequester ${r.maxConcurrentPerRequester}`;
      return `| ${config} | ${r.quiet.p50Ms} | ${r.quiet.p95Ms} | ${r.underAttack.p50Ms} | ${r.underAttack.p95Ms} | ${r.p95Ratio}× | ${r.agentPeakRssMb} MB | ${r.hostileRequestsSent} |`;
    })
    .join('\n');
  const markdown = `# Hostile corpus: what it costs other clients (\`npm run bench:hostile\`)

A well-behaved client asks a text request every 100 ms (its own reply topic), ${requestsPerPhase} times alone (quiet),
then ${requestsPerPhase} times while the hostile corpus (${corpus.length} entries, test/fixtures/hostile/) is sent
again and again from another connection and reply topic, each round as soon as the last was answered.
The agent and the cloud tier are child processes behind mosquitto (MQTT 5) on loopback; ${os.cpus().length} CPUs
shared with whatever else ran on the machine (load average at the end: ${result.setup.loadAverage.join(', ')}).

| agent config | quiet p50 (ms) | quiet p95 (ms) | under attack p50 (ms) | under attack p95 (ms) | p95 ratio (target ≤ ${targetRatio}×) | agent peak RSS (budget ${rssBudgetMb} MB) | hostile requests |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows}
`;
  const resultsDir = path.join(packageRoot, 'test', 'bench', 'results');
  const written = writeBenchFiles(values.out ?? (values.quick ? path.join(resultsDir, 'quick') : resultsDir), 'hostile', result, markdown);
  for (const r of runs) {
    console.log(`perRequester ${r.maxConcurrentPerRequester}: quiet p95 ${r.quiet.p95Ms} ms, under attack p95 ${r.underAttack.p95Ms} ms (${r.p95Ratio}×, target ${targetRatio}×); agent peak RSS ${r.agentPeakRssMb} MB (budget ${rssBudgetMb} MB)`);
  }
  console.log(`wrote ${path.relative(process.cwd(), written.json)} and ${path.relative(process.cwd(), written.markdown)}`);
} finally {
  await attacker.endAsync(true);
  await calm.endAsync(true);
  await cloud.stop();
  await broker.stop();
  rmSync(work, { recursive: true, force: true });
}
