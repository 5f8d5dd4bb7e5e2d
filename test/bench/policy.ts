/**
 * `npm run bench:policy`: the placement strategies against each other and the
 * hindsight oracle, on the real agent and the real cloud tier (child
 * processes) through the link emulator replaying real bandwidth traces.
 * groups.ts says what a group is, replay.ts what one replay does.
 */
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/paths.js';
import { realTracesDir } from '../helpers/bandwidth-trace.js';
import { startAedes } from '../helpers/mqtt.js';
import { BenchClient } from './bench-client.js';
import { planGroups, runGroup, throttlePeriodMs, type GroupContext } from './groups.js';
import { summarizeTargets, type GroupOutcome } from './metrics.js';
import { openLog, pinSelf, planCores, realtimeAvailable, runBenchmarkMain, startCloudTier } from './processes.js';
import { runReplay } from './replay.js';
import type { BenchResults, GroupResult } from './results.js';
import { analyzeStep, fullStepPlan, quickStepPlan, stepTraceOf, stepWorkload, type StepPlan, type StepReport } from './step-scenario.js';
import { buildWorkload, loadInputLibrary, requestMix, type InputLibrary } from './workload.js';
import { writeResults } from './write-results.js';

const help = `usage: node dist/test/bench/policy.js [--quick | --step] [--traces DIR] [--out DIR] [--only LIST] [--seed N]

Replays one seeded workload (text, audio and images at 640/1280/1920 px,
Poisson arrivals, per-request deadlines) against a real edge agent and cloud
tier through the link emulator, once per placement strategy and group (trace
set × RTT 20/80/200 ms × edge idle/busy × edge/cloud ratio 4×/8×), plus the
step-change scenario; writes policy.json, policy.md and policy.svg.

  --quick      one trace set, RTT 80 ms, edge idle, 4×, 30 requests, short step scenario (under 5 minutes)
  --step       only the step-change scenario (with --only: those groups and the step scenario)
  --traces DIR a folder of trace sets (folders of trace files) or one set (default test/fixtures/traces)
  --out DIR    where results go (default test/bench/results; its quick/ and step/ for --quick and --step)
  --only LIST  only the groups whose name contains one of these comma-separated texts
  --seed N     workload, trace and exploration seed (default 1)`;

async function stepScenario(context: GroupContext, library: InputLibrary, plan: StepPlan): Promise<StepReport> {
  const replay = await runReplay({
    ...context.replayBase,
    deviceId: `${context.runTag}-step`,
    edgeConfig: { policy: { strategy: 'adaptive', seed: context.seed } },
    link: { rttMs: plan.rttMs, jitterMs: plan.rttMs / 10, uplink: stepTraceOf(plan) },
    edge: { dutyShare: 1 / context.ratios[0]!, throttlePeriodMs, busy: false },
    workload: stepWorkload(library, plan),
    onStart: (emulator) => plan.outage && emulator.setConditions({ outages: [plan.outage], outageMode: 'stall' }),
  });
  appendFileSync(context.recordsFile, JSON.stringify({ group: 'step', strategy: 'adaptive', ...replay }) + '\n');
  return analyzeStep(replay.records, plan);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      step: { type: 'boolean' },
      traces: { type: 'string' },
      out: { type: 'string' },
      only: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const started = performance.now();
  const onlyStep = values.step && !values.only;
  const mode = onlyStep ? 'step' : values.quick ? 'quick' : 'full';
  const seed = Number(values.seed ?? 1);
  if (!Number.isInteger(seed)) throw new Error(`--seed ${values.seed}: expected an integer`);
  const outDir = path.resolve(values.out ?? path.join(packageRoot, 'test', 'bench', 'results', ...(mode === 'full' ? [] : [mode])));
  const tracesDir = path.resolve(values.traces ?? realTracesDir);
  const notes: string[] = [];
  // Counted before this process pins itself to one core.
  const cpus = os.availableParallelism();
  const cores = planCores();
  if (cores.unpinnedReason) {
    console.log(`note: ${cores.unpinnedReason}`);
    notes.push(cores.unpinnedReason);
  } else {
    await pinSelf(cores.cloudCore!);
  }
  if (!realtimeAvailable) {
    const note = 'chrt -f (SCHED_FIFO) is not available to this user, so the throttle wakes late on a busy core and the agent gets somewhat more than its quota (the measured ratio shows by how much)';
    console.log(`note: ${note}`);
    notes.push(note);
  }
  const workloadOptions = values.quick ? { seed, requests: 30, meanGapMs: 1000 } : { seed, requests: 60, meanGapMs: 1200 };
  const ratios = values.quick ? [4] : [4, 8];
  const only = values.only?.split(',').filter((text) => text !== '');
  const groups = onlyStep ? [] : planGroups({ tracesDir, quick: Boolean(values.quick), ratios, seed, replayS: (workloadOptions.requests * workloadOptions.meanGapMs) / 1000 + 10 }).filter((g) => !only || only.some((text) => g.name.includes(text)));

  const log = openLog(`run-${process.pid}`);
  console.log(`${mode} run: ${groups.length} group(s) × 5 strategies${values.quick || values.step || !only ? ' + step scenario' : ''}; child logs in ${log.path}`);
  const stops: (() => Promise<void>)[] = [];
  const results: GroupResult[] = [];
  const outcomes: GroupOutcome[] = [];
  let step: StepReport | null = null;
  try {
    const library = await loadInputLibrary(seed);
    const workload = buildWorkload(library, workloadOptions);
    const cloud = await startCloudTier(cores.cloudCore, log);
    stops.unshift(cloud.stop);
    const broker = await startAedes();
    stops.unshift(broker.stop);
    const client = await BenchClient.connect(broker, `run${process.pid}`);
    stops.unshift(() => client.close());
    const cloudPort = Number(cloud.address.split(':').pop());
    const context: GroupContext = {
      replayBase: { broker, client, cloudPort, cores, log },
      runTag: `r${process.pid}`,
      seed,
      ratios,
      library,
      workload,
      notes,
      recordsFile: path.join(os.tmpdir(), `splitinfer-bench-records-${process.pid}.jsonl`),
    };
    console.log(`per-request records in ${context.recordsFile}`);
    // The step scenario first: it is short, and a long run cut off later still has it.
    if (values.step || values.quick || !only) {
      const plan = values.quick ? quickStepPlan : fullStepPlan;
      console.log(`step scenario: ${plan.beforeMbps} → ${plan.afterMbps} Mbit/s at ${plan.stepAtS} s${plan.outage ? `, outage at ${plan.outage.startS} s` : ''}`);
      step = await stepScenario(context, library, plan);
      for (const event of step.events) {
        const parts = Object.entries(event.modalities).map(([m, a]) => `${m} from ${a.sideBefore ?? '?'}: ${a.verdict ?? 'no placement before'}${a.switchedAfterMs === null ? '' : ` (${a.switchedAfterMs} ms)`}`);
        console.log(`  ${event.event} at ${event.atS} s: ${parts.join('; ')}`);
      }
      writeResults(outDir, assemble());
    }
    for (const [i, group] of groups.entries()) {
      console.log(`[${i + 1}/${groups.length}] ${group.name} (trace ${group.traceSet}/${group.trace.name} from ${group.traceOffsetS} s)`);
      const { result, outcome } = await runGroup(context, group, i);
      results.push(result);
      outcomes.push(outcome);
      writeResults(outDir, assemble());
    }
  } finally {
    for (const stop of stops) await stop().catch(() => {});
  }
  const files = writeResults(outDir, assemble());
  console.log(`wrote ${files.map((f) => path.relative(process.cwd(), f)).join(', ')} in ${Math.round((performance.now() - started) / 1000)} s`);
  return 0;

  function assemble(): BenchResults {
    return {
      generatedAt: new Date().toISOString(),
      runSeconds: Math.round((performance.now() - started) / 1000),
      setup: {
        mode,
        seed,
        requestsPerReplay: workloadOptions.requests,
        meanGapMs: workloadOptions.meanGapMs,
        requestMix,
        tracesDir: path.relative(packageRoot, tracesDir) || '.',
        cpus,
        pinning: cores.unpinnedReason ?? `cloud tier, this process (emulator, broker, client) and the throttle on core ${cores.cloudCore}; the agent and the busy loop on core ${cores.edgeCore} (taskset)`,
        throttle:
          `the agent gets a userspace CPU quota: cpu-throttle.js (${realtimeAvailable ? 'SCHED_FIFO, ' : ''}on the cloud's core) lets it run for duty × ${throttlePeriodMs} ms of every ${throttlePeriodMs} ms and holds it with SIGSTOP for the rest (all threads), ` +
          `duty ${ratios.map((r) => `1/${r}`).join(' and ')} (the group names' 4x / 8x); the cloud runs unthrottled with one ORT thread. ` +
          'The ratio each group actually ran at is measured by timing a fixed OCR request (image-1280, alone, link unconstrained) on each side: it comes out above the nominal one, because a process that is stopped and resumed every cycle needs more CPU time for the same work (cold caches) and gets a little more than its quota.',
        node: process.version,
      },
      groups: results,
      summary: { ...summarizeTargets(outcomes), stepAdaptation: step },
      notes,
    };
  }
}

runBenchmarkMain(main);
