/**
 * The reference variant held on the device (config `localReference`): when a
 * task's quality floor rules the light local variant out and the device
 * holds the reference, the edge may answer with it: with the cloud down
 * instead of failing, and under the strategies as each one's rule says
 * (adaptive by the reference's own estimate against the cloud's). How the
 * device loads it (memory check, refusal remembered) and which configs may
 * ask for it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { LocalReference, REFERENCE_RETRY_MS } from '../../edge/local-reference.js';
import { LocalRuntime } from '../../edge/local-runtime.js';
import { AdaptiveStrategy } from '../../edge/policy/adaptive.js';
import { decidePlacement } from '../../edge/policy/constraints.js';
import { idleDevice } from '../../edge/policy/device-load.js';
import { PlacementEstimators } from '../../edge/policy/estimators.js';
import type { InputSize } from '../../edge/policy/input-size.js';
import { reason, renderWhy } from '../../edge/policy/reasons.js';
import type { PlacementContext } from '../../edge/policy/strategy.js';
import type { Quality } from '../../edge/request.js';
import { splitRequest } from '../../edge/tasks.js';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { createLogger } from '../../shared/log.js';
import { SessionShare } from '../../shared/ort/session-share.js';
import { codesOf, placer, unreachableCloud } from '../helpers/placement.js';

const log = createLogger('edge-reference-test', process.env.SPLITINFER_LOG_LEVEL ?? 'silent');
const catalog = loadCatalog();
const light = 'mobilenet-v2-int8';
const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]);
/** The context the task runner builds when the floor rules the light variant out and the device holds the reference. */
const heldReference = { localVariant: 'fp32', edgeReference: { lightVariant: light } };
const encode = (quality: Quality) => ({ task: { image: 'encode' as const }, quality: { image: quality } });

describe('the reference held on the device, under every strategy', () => {
  for (const name of ['rules', 'adaptive', 'always-local', 'always-cloud', 'confidence', 'static-profile']) {
    test(`${name}: with the cloud down, best is answered on the edge by the reference instead of failing`, () => {
      const decision = placer(name).place('image', { cloud: unreachableCloud, ...heldReference, extras: encode('best') });
      assert.deepEqual([decision.site, decision.edgeVariant, codesOf(decision)], ['edge', 'fp32', ['edge-reference', 'cloud-down']]);
      assert.equal(
        decision.reasons[0]!.text,
        'the quality floor for image.encode is best, which rules out the local mobilenet-v2-int8 variant, so the edge runs the reference fp32 variant it holds',
      );
    });

    test(`${name}: the request's preference for the edge is met by the reference`, () => {
      const decision = placer(name).place('image', { prefer: 'edge', ...heldReference, extras: encode(0.95) });
      assert.deepEqual([decision.site, codesOf(decision)], ['edge', ['edge-reference', 'preferred']]);
      assert.match(decision.reasons[0]!.text, /floor for image\.encode is 0\.95 top-1 agreement, which rules out the local mobilenet-v2-int8 variant/);
    });

    test(`${name}: a reference the device does not hold (refused, or loading) leaves today's behaviour, and says why`, () => {
      const refused = reason.referenceUnavailable('image.encode', 'fp32', 'this device has 5 MB of memory available, and loading it needs 525 MB');
      const down = placer(name).place('image', { cloud: unreachableCloud, localVariant: light, referenceUnavailable: refused, extras: encode('best') });
      assert.deepEqual([down.site, codesOf(down)], ['cloud', ['quality-floor', 'reference-unavailable', 'cloud-down']]);
      assert.match(renderWhy(down.reasons), /may run the reference fp32 variant on this device \(localReference\), but the device does not hold it now: this device has 5 MB/);
      const up = placer(name).place('image', { prefer: 'edge', localVariant: light, referenceUnavailable: refused, extras: encode('best') });
      assert.deepEqual([up.site, codesOf(up)], ['cloud', ['quality-floor', 'reference-unavailable']]);
    });
  }

  test('with the cloud up, each baseline does its obvious thing', () => {
    const place = (name: string) => {
      const decision = placer(name).place('image', { ...heldReference, extras: encode('best') });
      return [decision.site, codesOf(decision)];
    };
    assert.deepEqual(place('always-local'), ['edge', ['edge-reference', 'fixed-side']]);
    assert.deepEqual(place('always-cloud'), ['cloud', ['quality-floor', 'fixed-side']]);
    // The escalation target answers first: asking the cloud after the reference on the edge would ask the same model again.
    assert.deepEqual(place('confidence'), ['cloud', ['quality-floor', 'fixed-side']]);
    assert.deepEqual(place('static-profile'), ['cloud', ['quality-floor', 'profiled']]);
    // rules: where config places image.encode (the cloud).
    assert.deepEqual(place('rules'), ['cloud', ['quality-floor', 'configured']]);
    const pinned = placer('rules', { modalities: { image: { encode: { placement: 'edge' } } } }).place('image', { ...heldReference, extras: encode('best') });
    assert.deepEqual([pinned.site, codesOf(pinned)], ['edge', ['edge-reference', 'configured']]);
  });

  test('static-profile keeps its one decision for the light variant apart from the reference', () => {
    const { place } = placer('static-profile', { modalities: { image: { encode: { placement: 'edge' } } } });
    assert.deepEqual(codesOf(place('image', { ...heldReference, extras: encode('best') })), ['quality-floor', 'profiled']);
    const lightDecision = place('image', { localVariant: light, extras: encode('fast') });
    assert.deepEqual([lightDecision.site, lightDecision.edgeVariant], ['edge', light]);
  });
});

describe('adaptive: the edge with the reference against the cloud', () => {
  const photo = { width: 1600, height: 1200 };
  const imageSize: InputSize = { unit: 'pixels', items: [{ amount: photo.width * photo.height, bytes: 900_000, ...photo }] };

  /** Estimators on a fixed clock: the link, InceptionV3 in the cloud at `cloudMs` per image, and each local variant's own service time. */
  function setup(link: { rttMs: number; uplinkMbps: number }, local: { lightMs: number; referenceMs: number }, cloudMs = 60) {
    const now = 1_000_000;
    const clock = () => now;
    const config = loadEdgeConfig(undefined, { policy: { exploreShare: 0, hysteresis: 0.15 } });
    const estimators = new PlacementEstimators(
      config.policy,
      catalog,
      { imageMaxSide: 640, jpegQuality: 90 },
      { probeRoundTripMs: async () => link.rttMs, localItemsAhead: () => 0, slowdown: () => idleDevice },
      clock,
    );
    for (let i = 0; i < 3; i++) estimators.link.recordProbe(link.rttMs);
    estimators.link.recordRoundTrip(200_000, link.rttMs + (200_000 * 0.008) / link.uplinkMbps);
    for (const side of [320, 480, 640]) estimators.cloud.recordAnswer('image-encoder', side * side * 0.75, 0, cloudMs);
    estimators.local.record(`image-encoder@${light}`, imageSize.items[0]!.amount, local.lightMs);
    estimators.local.record('image-encoder@fp32', imageSize.items[0]!.amount, local.referenceMs);
    const strategy = new AdaptiveStrategy(config.policy, clock);
    const decide = (quality: Quality, variants: Pick<PlacementContext, 'localVariant' | 'edgeReference'>) => {
      const task = splitRequest({ id: 'a1', inputs: { image: png }, deadlineMs: 10_000, ...encode(quality) }, config, now).tasks[0]!;
      const decision = decidePlacement(strategy, task, { cloud: { state: 'closed', consecutiveFailures: 0 }, ...variants, estimators, inputSize: imageSize });
      return { ...decision, codes: codesOf(decision), why: renderWhy(decision.reasons) };
    };
    return { estimators, decide };
  }

  test('on a fast link the cloud answers best; the comparison is with the reference on the edge, not the light variant', () => {
    const s = setup({ rttMs: 20, uplinkMbps: 50 }, { lightMs: 40, referenceMs: 900 });
    const best = s.decide('best', heldReference);
    assert.deepEqual([best.site, best.codes], ['cloud', ['quality-floor', 'faster']]);
    assert.match(best.why, /vs edge 900 ms \(queue 0 \+ compute 900\): cloud is faster$/);
    assert.equal((best.estimates.edge as { expectedMs: number }).expectedMs, 900);
  });

  test('on a slow link the reference on the edge answers best', () => {
    const s = setup({ rttMs: 400, uplinkMbps: 0.1 }, { lightMs: 40, referenceMs: 900 });
    const best = s.decide('best', heldReference);
    assert.deepEqual([best.site, best.edgeVariant, best.codes], ['edge', 'fp32', ['edge-reference', 'faster']]);
    assert.match(best.why, /^the quality floor .* vs edge 900 ms \(queue 0 \+ compute 900\): edge is faster$/);
  });

  test('a cloud not expected to meet the deadline leaves best to the reference on the edge', () => {
    const s = setup({ rttMs: 20, uplinkMbps: 50 }, { lightMs: 40, referenceMs: 900 }, 20_000);
    const best = s.decide('best', heldReference);
    assert.deepEqual([best.site, best.codes], ['edge', ['edge-reference', 'only-meets-deadline']]);
  });

  test('light and reference service times are learnt apart, and where each ran last is remembered apart', () => {
    const link = { rttMs: 100, uplinkMbps: 0.8 };
    // The cloud options best may use: those its floor (no loss) leaves.
    const cloudOptions = setup(link, { lightMs: 40, referenceMs: 1 }).decide('best', heldReference).estimates.cloud as { expectedMs: number; belowAccuracyFloor?: true }[];
    const cloudMs = Math.min(...cloudOptions.filter((c) => !c.belowAccuracyFloor).map((c) => c.expectedMs));
    // The reference on the edge is faster than the cloud, by less than the 15% hysteresis margin; the light variant by far.
    const referenceMs = Math.round(cloudMs * 0.92);
    const s = setup(link, { lightMs: 40, referenceMs });
    const fast = s.decide('fast', { localVariant: light });
    assert.deepEqual([fast.site, fast.edgeVariant, (fast.estimates.edge as { expectedMs: number }).expectedMs], ['edge', light, 40]);
    const best = s.decide('best', heldReference);
    assert.equal((best.estimates.edge as { expectedMs: number }).expectedMs, referenceMs);
    // The light variant just ran on the edge; the reference's tasks start where config places them (the cloud) and stay there.
    assert.deepEqual([best.site, best.codes], ['cloud', ['quality-floor', 'within-hysteresis']]);
    assert.deepEqual([s.estimators.edge(fakeTask(), imageSize, light)?.expectedMs, s.estimators.edge(fakeTask(), imageSize, 'fp32')?.expectedMs], [40, referenceMs]);
  });

  const fakeTask = () => splitRequest({ id: 'e1', inputs: { image: png }, ...encode('best') }, loadEdgeConfig()).tasks[0]!;
});

describe('loading the reference on first need', () => {
  const model = findModel(catalog, 'image-encoder');
  /** A LocalReference whose memory reading and clock the test sets. */
  function reference(availableBytes: number) {
    const state = { availableBytes, readings: 0, now: 0, loaded: 0 };
    const held = new LocalReference({
      model,
      variant: 'fp32',
      sessions: new SessionShare({ providers: ['cpu'], intraOpThreads: 1 }, log),
      reserveBytes: 256e6,
      availableMemory: async () => {
        state.readings++;
        return state.availableBytes;
      },
      loaded: () => state.loaded++,
      log,
      clock: () => state.now,
    });
    return { held, state };
  }

  test('too little memory: the load is refused with the numbers, remembered, and tried again only after the retry time', async () => {
    const { held, state } = reference(300e6);
    assert.equal(held.unavailable(), undefined, 'before the first need nothing is known against it');
    assert.equal(await held.load(), undefined);
    const why = held.unavailable();
    assert.match(why!, /^this device has 300 MB of memory available, and loading image-encoder's reference variant fp32 needs 525 MB \(269 MB for the model, 256 MB to keep spare: config memoryReserveMB\); tried again after 60 s$/);
    assert.deepEqual([held.held(), state.readings, state.loaded], [undefined, 1, 0]);
    state.now += REFERENCE_RETRY_MS - 1;
    assert.equal(await held.load(), undefined);
    assert.equal(state.readings, 1, 'not tried again within the retry time');
    assert.equal(held.unavailable(), why);
    state.now += 1;
    assert.equal(held.unavailable(), undefined, 'the refusal has run out');
    await held.load();
    assert.equal(state.readings, 2);
  });

  test('with the memory, it is opened once, however many tasks need it at the same time, and its warm-up run is heard', async () => {
    const { held, state } = reference(8e9);
    try {
      const [first, second] = await Promise.all([held.load(), held.load()]);
      assert.ok(first && first === second);
      assert.deepEqual([first.loaded.variant, first.loaded.context.graphs, state.readings, state.loaded], ['fp32', ['inception-v3'], 1, 1]);
      assert.ok(first.warmup.ms > 0);
      assert.equal(held.held(), first);
      assert.equal(await held.load(), first);
    } finally {
      await held.close();
    }
  });
});

describe('config localReference', () => {
  /** Only image.encode runs locally, so that opening the runtime loads one light model. */
  const onlyEncode = (encode: Record<string, unknown>) =>
    loadEdgeConfig(undefined, {
      modalities: { text: { localVariant: '' }, audio: { localVariant: '' }, image: { localVariant: '', encode }, video: { localVariant: '' } },
    });

  test('is off by default, and takes a reserve of device memory', () => {
    const config = loadEdgeConfig();
    assert.deepEqual([config.modalities.image.encode!.localReference, config.modalities.image.localReference, config.memoryReserveMB], [false, false, 256]);
    assert.throws(() => loadEdgeConfig(undefined, { modalities: { image: { encode: { localReference: 'yes' } } } }), /localReference/);
  });

  test('a task without a distinct reference to hold is refused when the agent opens its models', async () => {
    await assert.rejects(
      LocalRuntime.open(onlyEncode({ localVariant: 'fp32', localReference: true }), log, catalog),
      /config modalities\.image\.encode\.localReference is true, but its localVariant is 'fp32', already the reference: there is no lighter variant for the reference to stand in for — remove the setting$/,
    );
    await assert.rejects(
      LocalRuntime.open(onlyEncode({ localVariant: '', localReference: true }), log, catalog),
      /its localVariant is '', no light variant: .* or set localVariant to fp32 to hold the reference from the start$/,
    );
    const video = loadEdgeConfig(undefined, { modalities: { text: { localVariant: '' }, audio: { localVariant: '' }, image: { localVariant: '' }, video: { localReference: true } } });
    await assert.rejects(LocalRuntime.open(video, log, catalog), /config modalities\.video\.localReference is true, but video tasks do not use a reference held on the device/);
  });

  test('a model whose catalog entry has no reference variant is refused', async () => {
    const withoutReference = {
      models: catalog.models.map((m) => (m.id === 'image-encoder' ? { ...m, variants: Object.fromEntries(Object.entries(m.variants).filter(([name]) => name !== 'fp32')) } : m)),
    };
    await assert.rejects(
      LocalRuntime.open(onlyEncode({ localReference: true }), log, withoutReference),
      /model image-encoder has no reference variant 'fp32' in the catalog \(it has mobilenet-v2, mobilenet-v2-int8\) — remove the setting/,
    );
  });

  test('a valid one opens nothing more at start: the reference waits for its first need', async () => {
    const local = await LocalRuntime.open(onlyEncode({ localReference: true }), log, catalog);
    try {
      const task = { settingsPath: 'image.encode' };
      assert.deepEqual([local.variantFor(task), local.reference(task)?.variant, local.reference(task)?.held(), local.warmupRuns().length], [light, 'fp32', undefined, 1]);
      assert.equal(local.reference({ settingsPath: 'image' }), undefined);
    } finally {
      await local.close();
    }
  });
});
