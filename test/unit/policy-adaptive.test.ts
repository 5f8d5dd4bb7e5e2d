/**
 * The `adaptive` placement strategy on fixed estimator inputs and a fixed
 * clock: link speed decides images, deadlines and the accuracy floor
 * constrain the choice, hysteresis stops flapping, exploration stays within
 * its share, stale estimates are refreshed, and constraints (pins, prefer,
 * circuit, local variant) come first.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadEdgeConfig, type EdgeConfig } from '../../edge/config.js';
import { AdaptiveStrategy } from '../../edge/policy/adaptive.js';
import { idleDevice, type DeviceSlowdown } from '../../edge/policy/device-load.js';
import { PlacementEstimators } from '../../edge/policy/estimators.js';
import type { InputSize } from '../../edge/policy/input-size.js';
import type { CloudHealth } from '../../edge/offload/circuit-breaker.js';
import { decidePlacement, type PlacementDecision } from '../../edge/policy/constraints.js';
import { renderWhy, type ReasonCode } from '../../edge/policy/reasons.js';
import type { Modality, Site } from '../../edge/request.js';
import { splitRequest, type Task } from '../../edge/tasks.js';
import { loadCatalog } from '../../shared/catalog.js';

const catalog = loadCatalog();
const healthy: CloudHealth = { state: 'closed', consecutiveFailures: 0 };
const photo = { width: 1600, height: 1200 };
const photoPixels = photo.width * photo.height;
const imageSize: InputSize = { unit: 'pixels', items: [{ amount: photoPixels, bytes: 900_000, ...photo }] };
const textSize: InputSize = { unit: 'text-bytes', items: [{ amount: 18, bytes: 18 }] };
const pngSignature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]);

/** An agent's estimators and an adaptive strategy on one manual clock, with hooks the test controls. */
function setup(policy: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}) {
  let now = 1_000_000;
  const clock = () => now;
  const config: EdgeConfig = loadEdgeConfig(undefined, { policy: { exploreShare: 0, ...policy }, ...overrides });
  const state = {
    slowdown: idleDevice as DeviceSlowdown,
    probes: 0,
    probeTimeouts: [] as (number | undefined)[],
    /** What a probe does; default: answers in 20 ms. */
    probe: async (): Promise<number> => 20,
  };
  const estimators = new PlacementEstimators(
    config.policy,
    catalog,
    config.offload,
    {
      probeRoundTripMs: (timeoutMs) => {
        state.probes++;
        state.probeTimeouts.push(timeoutMs);
        return state.probe();
      },
      localItemsAhead: () => 0,
      slowdown: () => state.slowdown,
    },
    clock,
  );
  const strategy = new AdaptiveStrategy(config.policy, clock);

  /** RTT from probes, uplink from one 200 kB transfer. */
  const link = (rttMs: number, uplinkMbps: number) => {
    for (let i = 0; i < 3; i++) estimators.link.recordProbe(rttMs);
    estimators.link.recordRoundTrip(200_000, rttMs + (200_000 * 0.008) / uplinkMbps);
  };
  /** Cloud OCR at msPerMegapixel over every shaping size, plus one shrink (10 ms, typical JPEG size). */
  const cloudOcr = (msPerMegapixel: number, queueMs: number) => {
    for (const side of [640, 960, 1280, 1600]) {
      const pixels = side * side * 0.75;
      estimators.cloud.recordAnswer('image-ocr', pixels, queueMs, (pixels / 1e6) * msPerMegapixel);
    }
    const option = { name: '960px q75', maxSide: 960, jpegQuality: 75, accuracyCost: 0 };
    estimators.payload.record({ option, outputPixels: 960 * 720, jpegBytes: 960 * 720 * 0.15, keptOriginal: false, prepareMs: 10 }, photoPixels);
  };
  const edgeOcr = (ms: number) => estimators.local.record('image-ocr@fp32', photoPixels, ms);

  const task = (modality: Modality, deadlineMs = 10_000, prefer?: Site): Task => {
    const inputs = modality === 'text' ? { text: 'Where is my order?' } : { [modality]: modality === 'video' ? [pngSignature] : pngSignature };
    return splitRequest({ id: `r${now}`, inputs, deadlineMs, prefer: prefer && { [modality]: prefer } }, config, now).tasks[0]!;
  };
  /** As the task runner decides (constraints, then the strategy); `localVariant` null: this modality has none. `why` renders the reasons, `codes` lists them. */
  const decide = (t: Task, cloud: CloudHealth = healthy, localVariant: string | null = 'fp32'): Decided => {
    const decision = decidePlacement(strategy, t, { cloud, localVariant: localVariant ?? undefined, estimators, inputSize: t.modality === 'text' ? textSize : imageSize });
    return { ...decision, why: renderWhy(decision.reasons), codes: decision.reasons.map((r) => r.code) };
  };

  return { config, estimators, strategy, state, link, cloudOcr, edgeOcr, task, decide, advance: (ms: number) => (now += ms) };
}

type Decided = PlacementDecision & { why: string; codes: ReasonCode[] };
type CloudRow = { option: string; expectedMs?: number; belowAccuracyFloor?: boolean; meetsDeadline?: boolean };
const cloudRows = (decision: PlacementDecision) => decision.estimates.cloud as CloudRow[];

describe('adaptive placement: where an image runs', () => {
  test('on a fast link the image goes to the cloud, at the fastest shaping within the accuracy floor, and why gives the sums', () => {
    const s = setup();
    s.link(20, 50);
    s.cloudOcr(50, 5);
    s.edgeOcr(900);
    const decision = s.decide(s.task('image'));
    assert.equal(decision.site, 'cloud');
    assert.equal(decision.shaping?.name, '960px q75');
    assert.deepEqual(decision.codes, ['faster']);
    assert.match(decision.why, /^cloud at 960px q75 (\d+) ms \(shrink 10 \+ rtt 20 \+ upload 17 \+ queue 5 \+ compute 35\) vs edge 900 ms \(queue 0 \+ compute 900\): cloud is faster$/);
    const rows = cloudRows(decision);
    assert.equal(rows.length, 12, 'one estimate per shaping option');
    const chosen = rows.find((r) => r.option === '960px q75')!;
    assert.ok(rows.every((r) => r.belowAccuracyFloor || r.expectedMs! >= chosen.expectedMs!), 'nothing allowed is faster');
    assert.deepEqual((decision.estimates.link as { rttMs: number }).rttMs, 20);
    assert.equal((decision.estimates.edge as { expectedMs: number }).expectedMs, 900);
    assert.equal(decision.estimates.chosen, '960px q75');
  });

  test('on a slow link the same image runs on the edge', () => {
    const s = setup();
    s.link(80, 0.5);
    s.cloudOcr(50, 5);
    s.edgeOcr(900);
    const decision = s.decide(s.task('image'));
    assert.equal(decision.site, 'edge');
    assert.equal(decision.shaping, undefined);
    assert.deepEqual(decision.codes, ['faster']);
  });

  test('an offload overdue past its high estimate moves the next image to the edge before any answer arrives, and back once it settles', () => {
    const s = setup({ hysteresis: 0 });
    s.link(20, 50);
    s.cloudOcr(50, 5);
    s.edgeOcr(900);
    const first = s.decide(s.task('image'));
    assert.equal(first.site, 'cloud');
    const { settled } = s.estimators.cloudTaskStarted(s.task('image'), imageSize, first.shaping, first.expectedHighMs);
    s.advance(first.expectedHighMs! + 500);
    const meanwhile = s.decide(s.task('image'));
    assert.equal(meanwhile.site, 'cloud', '500 ms overdue: the cloud is still faster than 900 ms on the edge');
    assert.match(meanwhile.why, / \+ overdue 500\) vs edge/);
    s.advance(500);
    const stalled = s.decide(s.task('image'));
    assert.equal(stalled.site, 'edge', `1000 ms overdue: ${stalled.why}`);
    settled();
    assert.equal(s.estimators.overdueMs(), 0);
    assert.equal(s.decide(s.task('image')).site, 'cloud');
  });

  test('the uplink wait predicted when a task was sent is not learnt as RTT', () => {
    const s = setup();
    s.link(40, 8);
    const t = s.task('text');
    const answer = { sentBytes: 18, linkMs: 40 + 900, queueMs: 0, computeMs: 1, prepareMs: 0, items: 1 };
    s.estimators.record(t, { site: 'cloud', timings: { totalMs: 941, queueMs: 0, computeMs: 1, transferMs: 940 }, failed: false, inputSize: textSize, cloudAnswer: answer, uplinkWaitMs: 900 }, undefined);
    assert.equal(s.estimators.link.rttEstimate()?.high, 40);
  });

  test('bytes already on their way up count as uplink wait for the next offload', () => {
    const s = setup();
    s.link(20, 8);
    s.cloudOcr(50, 5);
    s.edgeOcr(5_000);
    const alone = s.decide(s.task('image'));
    const chosen = cloudRows(alone).find((r) => r.option === alone.shaping!.name)!;
    // Three images of 500 kB ahead at 8 Mbit/s: 1.5 s of uplink.
    for (let i = 0; i < 3; i++) s.estimators.link.reserveUpload(500_000);
    const behind = s.decide(s.task('image'));
    const row = cloudRows(behind).find((r) => r.option === alone.shaping!.name)! as CloudRow & { uplinkWaitMs: number };
    assert.ok(Math.abs(row.uplinkWaitMs - 1500) < 1, `uplink wait ${row.uplinkWaitMs}`);
    assert.ok(Math.abs(row.expectedMs! - chosen.expectedMs! - 1500) < 1);
    assert.match(behind.why, /rtt 20 \+ uplink wait 1500 \+ upload/);
  });

  test('a deadline only the edge is expected to meet sends the task to the edge, although the cloud is faster on average', () => {
    const s = setup();
    // A jittery link: mostly 20 ms, sometimes 400 ms.
    for (const rtt of [20, 20, 20, 20, 20, 20, 20, 20, 400, 400]) s.estimators.link.recordProbe(rtt);
    s.estimators.link.recordRoundTrip(200_000, 96 + 32);
    s.cloudOcr(50, 5);
    s.edgeOcr(300);
    const relaxed = s.decide(s.task('image', 10_000));
    assert.equal(relaxed.site, 'cloud');
    const tight = s.decide(s.task('image', 400));
    assert.equal(tight.site, 'edge');
    assert.deepEqual(tight.codes, ['only-meets-deadline']);
    assert.ok(cloudRows(tight).every((r) => r.meetsDeadline === false));
    const impossible = s.decide(s.task('image', 50));
    assert.deepEqual(impossible.codes, ['faster']);
    assert.match(impossible.why, /neither is expected to meet the 50 ms deadline/);
  });

  test('the accuracy floor excludes low-quality shaping options even when they would be faster', () => {
    const strict = setup({ accuracyFloor: 0.95 });
    const lenient = setup({ accuracyFloor: 0.8 });
    for (const s of [strict, lenient]) {
      s.link(20, 50);
      s.cloudOcr(50, 5);
      s.edgeOcr(900);
    }
    const lenientDecision = lenient.decide(lenient.task('image'));
    assert.equal(lenientDecision.shaping?.name, '640px q50');
    const strictDecision = strict.decide(strict.task('image'));
    assert.equal(strictDecision.site, 'cloud');
    assert.ok(strictDecision.shaping!.accuracyCost <= 0.05, `${strictDecision.shaping!.name} costs ${strictDecision.shaping!.accuracyCost}`);
    const excluded = cloudRows(strictDecision).find((r) => r.option === '640px q50')!;
    assert.equal(excluded.belowAccuracyFloor, true);
    assert.ok(excluded.expectedMs! < cloudRows(strictDecision).find((r) => r.option === strictDecision.shaping!.name)!.expectedMs!);
  });

  test('until the cloud has been measured a modality stays where config places it, and says what is missing', () => {
    const s = setup();
    s.edgeOcr(900);
    const image = s.decide(s.task('image'));
    assert.equal(image.site, 'cloud');
    assert.deepEqual(image.codes, ['no-estimate']);
    assert.match(image.why, /\(round-trip time, uplink bandwidth, cloud compute not measured\)/);
    const text = s.decide(s.task('text'));
    assert.equal(text.site, 'edge');
  });

  test('text: a round trip costs more than the local classifier', () => {
    const s = setup();
    s.link(20, 50);
    s.estimators.cloud.recordAnswer('text-intent', 18, 0, 1);
    s.estimators.local.record('text-intent@fp32', 18, 2);
    const decision = s.decide(s.task('text'));
    assert.equal(decision.site, 'edge');
    assert.deepEqual(decision.codes, ['faster']);
    assert.deepEqual([(decision.estimates.edge as { expectedMs: number }).expectedMs, (decision.estimates.cloud as CloudRow[])[0]!.expectedMs], [2, 21]);
  });
});

describe('adaptive placement: stability and exploration', () => {
  test('hysteresis: estimates wobbling around equality never flip the side; a clear difference does, once', () => {
    const s = setup({ hysteresis: 0.15 });
    s.link(20, 50);
    s.cloudOcr(50, 5);
    const cloudMs = cloudRows(s.decide(s.task('image'))).find((r) => r.option === '960px q75')!.expectedMs!;
    s.edgeOcr(cloudMs);
    const sites: Site[] = [];
    const decideAt = (factor: number) => {
      s.state.slowdown = { ...idleDevice, factor };
      const decision = s.decide(s.task('image'));
      sites.push(decision.site);
      return decision;
    };
    const wobble = () => {
      for (let i = 0; i < 20; i++) decideAt(i % 2 === 0 ? 0.9 : 1.1);
    };
    assert.deepEqual(decideAt(0.95).codes, ['within-hysteresis']);
    wobble();
    assert.ok(sites.every((site) => site === 'cloud'), sites.join(','));
    assert.equal(decideAt(0.8).site, 'edge', 'edge 20% faster: switch');
    wobble();
    assert.equal(decideAt(1.25).site, 'cloud', 'cloud 20% faster: switch back');
    const switches = sites.filter((site, i) => i > 0 && site !== sites[i - 1]).length;
    assert.equal(switches, 2, sites.join(','));
  });

  test('exploration runs the path not chosen for at most its share of 1000 decisions, reproducibly from the seed', () => {
    const run = (seed: number) => {
      const s = setup({ exploreShare: 0.05, seed });
      s.link(20, 50);
      s.cloudOcr(50, 5);
      s.edgeOcr(900);
      const explored = Array.from({ length: 1000 }, () => s.decide(s.task('image'))).filter((d) => d.estimates.explored === true);
      assert.deepEqual(s.strategy.explorationCounts(), { decided: 1000, explored: explored.length });
      for (const d of explored) {
        assert.equal(d.site, 'edge');
        assert.deepEqual(d.codes, ['exploring', 'faster']);
        assert.match(d.why, /^exploring on the edge \(a random 5% share of tasks keeps its estimate fresh\); /);
      }
      return explored.length;
    };
    const explored = run(7);
    assert.ok(explored <= 50 && explored >= 20, `explored ${explored} of 1000`);
    assert.equal(run(7), explored, 'same seed, same explorations');
  });

  test('exploration never sends a task where its deadline would be missed', () => {
    const s = setup({ exploreShare: 0.5 });
    s.link(20, 50);
    s.cloudOcr(50, 5);
    s.edgeOcr(900);
    const decisions = Array.from({ length: 200 }, () => s.decide(s.task('image', 500)));
    assert.ok(decisions.every((d) => d.site === 'cloud'));
    assert.equal(s.strategy.explorationCounts().explored, 0);
  });

  test('a stale estimate is explored first, and a stale RTT starts a ServerLive probe', () => {
    const s = setup({ exploreShare: 0.05, staleAfterMs: 10_000, probeIdleMs: 5_000 });
    s.link(20, 50);
    s.cloudOcr(50, 5);
    s.edgeOcr(900);
    for (let i = 0; i < 40; i++) assert.equal(s.decide(s.task('image', 500)).site, 'cloud');
    assert.equal(s.state.probes, 0, 'the RTT estimate is fresh');
    s.advance(11_000);
    const decision = s.decide(s.task('image'));
    assert.equal(decision.site, 'edge');
    assert.deepEqual(decision.codes, ['exploring', 'faster']);
    assert.match(decision.why, /^exploring on the edge \(its newest sample is 11\.0 s old\); /);
    assert.equal(s.state.probes, 1, 'RTT older than probeIdleMs');
    s.decide(s.task('image'));
    assert.equal(s.state.probes, 1, 'the probe refreshed the RTT');
  });
});

describe('adaptive placement: constraints come first', () => {
  const ready = (policy: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}) => {
    const s = setup(policy, overrides);
    s.link(20, 50);
    s.cloudOcr(50, 5);
    s.edgeOcr(900);
    return s;
  };
  const open: CloudHealth = { state: 'open', consecutiveFailures: 3, lastError: 'unreachable (ECONNREFUSED)' };

  test("a config pin to the edge keeps the modality on the device, over a faster cloud and the request's prefer", () => {
    const s = ready({}, { modalities: { image: { pin: 'edge' } } });
    const decision = s.decide(s.task('image', 10_000, 'cloud'));
    assert.equal(decision.site, 'edge');
    assert.deepEqual(decision.codes, ['pinned']);
  });

  test('a pin to the edge without a local variant is refused when the config loads', () => {
    assert.throws(
      () => loadEdgeConfig(undefined, { modalities: { audio: { pin: 'edge', localVariant: '' } } }),
      /modalities\.audio\.pin is 'edge', but its localVariant is '' — set a local variant/,
    );
  });

  test('a pin to the cloud offloads, with the fastest shaping, but gives way to an open circuit when a local variant exists', () => {
    const s = ready({}, { modalities: { image: { pin: 'cloud' } } });
    s.edgeOcr(10);
    const decision = s.decide(s.task('image'));
    assert.equal(decision.site, 'cloud');
    assert.equal(decision.shaping?.name, '960px q75');
    assert.deepEqual(decision.codes, ['pinned', 'shaped']);
    const down = s.decide(s.task('image'), open);
    assert.equal(down.site, 'edge');
    assert.deepEqual(down.codes, ['pinned', 'cloud-down']);
  });

  test("the request's prefer is respected either way", () => {
    const s = ready();
    assert.deepEqual(s.decide(s.task('image', 10_000, 'edge')).codes, ['preferred']);
    const toCloud = s.decide(s.task('text', 10_000, 'cloud'));
    assert.equal(toCloud.site, 'cloud');
    assert.deepEqual(toCloud.codes, ['preferred'], 'no cloud estimate for text yet, so no shaping sentence');
  });

  test('an open circuit sends tasks with a local variant to the edge; without one they go to the cloud to fail fast', () => {
    const s = ready();
    const decision = s.decide(s.task('image'), open);
    assert.equal(decision.site, 'edge');
    assert.deepEqual(decision.codes, ['cloud-down']);
    const noLocal = s.decide(s.task('image'), open, null);
    assert.equal(noLocal.site, 'cloud');
    assert.deepEqual(noLocal.codes, ['no-local-variant', 'cloud-down']);
    assert.equal(s.strategy.explorationCounts().decided, 0, 'constrained tasks are not free decisions');
  });
});
