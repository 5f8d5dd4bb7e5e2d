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
import { referenceOf, summarizeEncoderTargets } from './encoder-metrics.js';
import { writeEncoderResults, type EncoderBenchResults, type EncoderGroupResult } from './encoder-report.js';
import { buildEncoderWorkload, encodeKindSpecs, floorMix, loadEncoderLibrary, type EncoderLibrary } from './encoder-workload.js';
import { summarizeTargets, type GroupOutcome } from './metrics.js';
import { openLog, pinSelf, planCores, realtimeAvailable, runBenchmarkMain, startCloudTier } from './processes.js';
import { runReplay } from './replay.js';
import type { BenchResults, GroupResult, RunSetup } from './results.js';
import { analyzeStep, fullStepPlan, quickStepPlan, stepTraceOf, stepWorkload, type StepPlan, type StepReport } from './step-scenario.js';
import { buildWorkload, loadInputLibrary, requestMix, type InputLibrary } from './workload.js';
import { writeResults } from './write-results.js';

const help = `usage: node dist/test/bench/policy.js [--quick | --step] [--workload ocr|encoder|all] [--traces DIR] [--out DIR] [--only LIST] [--seed N]

Replays one seeded workload (text, audio and images at 640/1280/1920 px,
Poisson arrivals, per-request deadlines) against a real edge agent and cloud
tier through the link emulator, once per placement strategy and group (trace
set × RTT 20/80/200 ms × edge idle/busy × edge/cloud ratio 4×/8×), plus the
step-change scenario; writes policy.json, policy.md and policy.svg. Then the
image-encoder workload (task.image: encode at three sizes, each request with
a quality floor) in its own groups, encoder/<trace set>/rtt20|80|200/idle/4x;
writes policy-encoder.json, .md and .svg.

  --quick      one trace set, RTT 80 ms, edge idle, 4×, 30 requests, short step scenario (under 5 minutes);
               the encoder workload's one group, 20 requests (about 4 minutes more)
  --step       only the step-change scenario (with --only: those groups and the step scenario)
  --workload   ocr: only the OCR workload (and the step scenario); encoder: only the encoder workload; all (default)
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
      workload: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const started = performance.now();
  const workloadChoice = values.workload ?? 'all';
  if (!['ocr', 'encoder', 'all'].includes(workloadChoice)) throw new Error(`--workload ${workloadChoice}: expected ocr, encoder or all`);
  if (values.step && workloadChoice === 'encoder') throw new Error('--step runs the OCR workload\'s step-change scenario: leave out --workload encoder');
  const runOcr = workloadChoice !== 'encoder';
  const runEncoder = workloadChoice !== 'ocr' && !values.step;
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
  const selected = (name: string) => !only || only.some((text) => name.includes(text));
  const groups = onlyStep || !runOcr ? [] : planGroups({ tracesDir, quick: Boolean(values.quick), ratios, seed, replayS: (workloadOptions.requests * workloadOptions.meanGapMs) / 1000 + 10 }).filter((g) => selected(g.name));
  const runStep = runOcr && (values.step || values.quick || !only);
  // Encoder groups: both trace sets × RTT 20/80/200, edge idle, 4× only, which keeps the encoder part of a full run near
  // 25 minutes on two cores (6 groups × 5 replays of 30 requests); the OCR groups cover the busy edge and 8×.
  const encoderRatios = [4];
  const encoderOptions = values.quick ? { seed, requests: 20, meanGapMs: 1000 } : { seed, requests: 30, meanGapMs: 1000 };
  const encoderGroups = !runEncoder
    ? []
    : planGroups({ tracesDir, quick: Boolean(values.quick), ratios: encoderRatios, loads: [false], namePrefix: 'encoder/', seed, replayS: (encoderOptions.requests * encoderOptions.meanGapMs) / 1000 + 10 }).filter((g) => selected(g.name));

  const log = openLog(`run-${process.pid}`);
  console.log(`${mode} run: ${groups.length} group(s) + ${encoderGroups.length} encoder group(s) × 5 strategies${runStep ? ' + step scenario' : ''}; child logs in ${log.path}`);
  const stops: (() => Promise<void>)[] = [];
  const results: GroupResult[] = [];
  const outcomes: GroupOutcome[] = [];
  const encoderResults: EncoderGroupResult[] = [];
  let encoderLibrary: EncoderLibrary | undefined;
  let step: StepReport | null = null;
  try {
    const library = await loadInputLibrary(seed);
    if (encoderGroups.length > 0) {
      console.log('encoder workload: running the heavy and the light encoder on its images once, for the reference labels');
      encoderLibrary = await loadEncoderLibrary(seed);
      console.log(`  ${encoderLibrary.images.length} images; the light variant agrees with the heavy one on ${encoderLibrary.lightAgreement} of them (catalog ${encoderLibrary.catalogAgreement})`);
    }
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
      offloadBytes: library.offloadBytes,
      notes,
      recordsFile: path.join(os.tmpdir(), `splitinfer-bench-records-${process.pid}.jsonl`),
    };
    console.log(`per-request records in ${context.recordsFile}`);
    // The step scenario first: it is short, and a long run cut off later still has it.
    if (runStep) {
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
    if (encoderLibrary) {
      const encoderContext: GroupContext = {
        ...context,
        workload: buildEncoderWorkload(encoderLibrary, encoderOptions),
        offloadBytes: encoderLibrary.offloadBytes,
        encoder: referenceOf(encoderLibrary.images, encoderLibrary.lightAgreement),
      };
      for (const [i, group] of encoderGroups.entries()) {
        console.log(`[encoder ${i + 1}/${encoderGroups.length}] ${group.name} (trace ${group.traceSet}/${group.trace.name} from ${group.traceOffsetS} s)`);
        const { result } = await runGroup(encoderContext, group, groups.length + i);
        encoderResults.push({ name: result.name, conditions: result.conditions, policies: result.policies as EncoderGroupResult['policies'] });
        writeEncoderResults(outDir, assembleEncoder());
      }
    }
  } finally {
    for (const stop of stops) await stop().catch(() => {});
  }
  const files = [...(runStep || groups.length > 0 ? writeResults(outDir, assemble()) : []), ...(encoderLibrary ? writeEncoderResults(outDir, assembleEncoder()) : [])];
  console.log(`wrote ${files.map((f) => path.relative(process.cwd(), f)).join(', ')} in ${Math.round((performance.now() - started) / 1000)} s`);
  return 0;

  function assembleEncoder(): EncoderBenchResults {
    const lib = encoderLibrary!;
    return {
      generatedAt: new Date().toISOString(),
      runSeconds: Math.round((performance.now() - started) / 1000),
      setup: {
        ...setupOf(encoderOptions, encodeKindSpecs, encoderRatios),
        floorMix,
        imageSource: lib.source,
        images: lib.images.length,
        lightAgreement: lib.lightAgreement,
        catalogAgreement: lib.catalogAgreement,
      },
      groups: encoderResults,
      summary: summarizeEncoderTargets(encoderResults),
      notes,
    };
  }

  function assemble(): BenchResults {
    return {
      generatedAt: new Date().toISOString(),
      runSeconds: Math.round((performance.now() - started) / 1000),
      setup: setupOf(workloadOptions, requestMix, ratios),
      groups: results,
      summary: { ...summarizeTargets(outcomes), stepAdaptation: step },
      notes,
    };
  }

  function setupOf(options: { requests: number; meanGapMs: number }, mix: unknown, runRatios: readonly number[]): RunSetup {
    return {
        mode,
        seed,
        requestsPerReplay: options.requests,
        meanGapMs: options.meanGapMs,
        requestMix: mix,
        tracesDir: path.relative(packageRoot, tracesDir) || '.',
        cpus,
        pinning: cores.unpinnedReason ?? `cloud tier, this process (emulator, broker, client) and the throttle on core ${cores.cloudCore}; the agent and the busy loop on core ${cores.edgeCore} (taskset)`,
        throttle:
          `the agent gets a userspace CPU quota: cpu-throttle.js (${realtimeAvailable ? 'SCHED_FIFO, ' : ''}on the cloud's core) lets it run for duty × ${throttlePeriodMs} ms of every ${throttlePeriodMs} ms and holds it with SIGSTOP for the rest (all threads), ` +
          `duty ${runRatios.map((r) => `1/${r}`).join(' and ')} (the group names' 4x / 8x); the cloud runs unthrottled with one ORT thread. ` +
          'The ratio each group actually ran at is measured by timing a fixed OCR request (image-1280, alone, link unconstrained) on each side: it comes out above the nominal one, because a process that is stopped and resumed every cycle needs more CPU time for the same work (cold caches) and gets a little more than its quota.',
        node: process.version,
    };
  }
}

runBenchmarkMain(main);
