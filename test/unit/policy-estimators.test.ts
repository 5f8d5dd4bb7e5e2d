/**
 * The placement estimators on fixed inputs and a fixed clock: recent
 * windows, the link (RTT, uplink, probes when stale), the cloud's queue and
 * compute, local service time by input size under load, payload shaping,
 * and input sizes read from headers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { getHandler } from '../../shared/handlers/handler.js';
import '../../shared/handlers/index.js';
import { CloudEstimator } from '../../edge/policy/cloud-estimator.js';
import { idleDevice, slowdownFrom, type DeviceSlowdown } from '../../edge/policy/device-load.js';
import { measureInputSize } from '../../edge/policy/input-size.js';
import { LinkEstimator, mbpsFromMsPerByte } from '../../edge/policy/link-estimator.js';
import { LocalEstimator } from '../../edge/policy/local-estimator.js';
import { defaultShaping, shapingOptionsOf } from '../../edge/offload/image-shaping.js';
import { PayloadEstimator, relativeJpegSize, resizedPixels } from '../../edge/policy/payload-estimator.js';
import { ServiceTimeCurve } from '../../edge/policy/service-time-curve.js';
import { WindowStats } from '../../edge/policy/window-stats.js';
import { buildWav } from '../helpers/build-wav.js';
import { idleEstimators, placementTask } from '../helpers/placement.js';
import { loadEdgeConfig } from '../../edge/config.js';
import { readFixture } from '../helpers/inference.js';

/** A clock the test moves by hand. */
function manualClock(startMs = 0) {
  let now = startMs;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

const close = (actual: number | undefined, expected: number, tolerance = 1e-6) =>
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);

describe('recent-window statistics', () => {
  test('mean and 90th percentile cover only the newest samples, and the age is the time since the newest', () => {
    const { clock, advance } = manualClock();
    const window = new WindowStats({ maxSamples: 10, clock });
    assert.equal(window.summary(), undefined);
    assert.equal(window.ageMs(), Infinity);
    for (let i = 1; i <= 15; i++) window.add(i);
    advance(250);
    // Samples 6..15 remain.
    assert.deepEqual(window.summary(), { mean: 10.5, high: 14, count: 10, ageMs: 250 });
  });

  test('samples older than maxAgeMs drop out, but the age still says when the last one came', () => {
    const { clock, advance } = manualClock();
    const window = new WindowStats({ maxSamples: 10, maxAgeMs: 1000, clock });
    window.add(100);
    advance(600);
    window.add(300);
    assert.equal(window.mean(), 200);
    advance(500);
    assert.equal(window.mean(), 300, 'the first sample is 1100 ms old');
    advance(600);
    assert.equal(window.summary(), undefined);
    assert.equal(window.ageMs(), 1100);
  });
});

describe('link estimator', () => {
  const options = { minBandwidthPayloadBytes: 32 * 1024, windowSize: 8, maxAgeMs: 30_000, probeIdleMs: 5_000, uplinkHalfLifeMs: 3_000, clock: manualClock().clock };

  test('small payloads measure RTT; large ones measure uplink as bytes over (link time − RTT)', () => {
    const link = new LinkEstimator(options);
    link.recordRoundTrip(200, 40);
    link.recordRoundTrip(300, 44);
    close(link.rttEstimate()?.mean, 42);
    assert.equal(link.uploadEstimate(1_000_000), undefined, 'no large transfer measured yet');
    assert.deepEqual(link.uploadEstimate(2_000), { meanMs: 0, highMs: 0 }, "a small payload's transfer is inside its RTT samples");
    // 500 kB in 42 + 400 ms: 500 000 B / 400 ms = 10 Mbit/s.
    link.recordRoundTrip(500_000, 442);
    close(link.snapshot().uplinkMbps, 10);
    close(link.uploadEstimate(250_000)?.meanMs, 200);
    close(link.rttEstimate()?.mean, 42, 1e-9);
  });

  test("once the uplink is known, a small payload's upload time is not counted as RTT", () => {
    const link = new LinkEstimator(options);
    link.recordRoundTrip(100, 20);
    link.recordRoundTrip(100_000, 20 + 1600); // 0.5 Mbit/s
    link.recordRoundTrip(10_000, 20 + 160);
    close(link.rttEstimate()?.mean, 20, 1e-6);
  });

  test('one slow transfer moves the uplink estimate a lot: transfers pool as total time over total bytes', () => {
    const link = new LinkEstimator(options);
    link.recordRoundTrip(100, 10);
    const at20Mbps = 100_000 / (20 / 0.008);
    for (let i = 0; i < 7; i++) link.recordRoundTrip(100_000, 10 + at20Mbps);
    close(link.snapshot().uplinkMbps, 20, 1e-6);
    link.recordRoundTrip(100_000, 10 + 100_000 / (0.5 / 0.008));
    // 7 × 40 ms + 1600 ms for 800 kB: 3.4 Mbit/s.
    close(link.snapshot().uplinkMbps, 800_000 / (7 * 40 + 1600) * 0.008, 1e-6);
    close(mbpsFromMsPerByte(0.008 / 3), 3);
  });

  test('after a step down in rate, recency weights let the new rate dominate within three transfers', () => {
    const { clock, advance } = manualClock();
    const link = new LinkEstimator({ ...options, clock });
    link.recordRoundTrip(100, 10);
    for (let i = 0; i < 7; i++) {
      link.recordRoundTrip(100_000, 10 + 100_000 / (20 / 0.008));
      advance(1_000);
    }
    close(link.snapshot().uplinkMbps, 20, 1e-6);
    const mbpsAfter: number[] = [];
    for (let i = 0; i < 3; i++) {
      advance(1_600);
      link.recordRoundTrip(100_000, 10 + 100_000 / (0.5 / 0.008));
      mbpsAfter.push(link.snapshot().uplinkMbps!);
    }
    // Unweighted pooling would still say 2.0 Mbit/s after the third slow transfer (7 × 40 + 3 × 1600 ms for 1 MB).
    assert.ok(mbpsAfter[0]! < 2, `after one slow transfer: ${mbpsAfter[0]} Mbit/s`);
    assert.ok(mbpsAfter[2]! < 0.75, `after three: ${mbpsAfter[2]} Mbit/s`);
  });

  test('payloads booked on the uplink delay the next one, and the backlog drains at the estimated rate', () => {
    const { clock, advance } = manualClock();
    const link = new LinkEstimator({ ...options, clock });
    assert.equal(link.uploadWaitMs(), 0);
    link.reserveUpload(200_000);
    assert.equal(link.uploadWaitMs(), 0, 'no rate known: nothing to wait for');
    link.recordRoundTrip(100, 20);
    link.recordRoundTrip(100_000, 20 + 800); // 1 Mbit/s
    link.reserveUpload(200_000);
    link.reserveUpload(1_000);
    close(link.uploadWaitMs(), 1_600, 1e-6);
    advance(600);
    close(link.uploadWaitMs(), 1_000, 1e-6);
    advance(2_000);
    assert.equal(link.uploadWaitMs(), 0);
  });

  test('a stale RTT estimate starts one probe at a time, and its round trip becomes the estimate', async () => {
    const { clock, advance } = manualClock();
    const link = new LinkEstimator({ ...options, clock });
    let probes = 0;
    let answer: (ms: number) => void = () => undefined;
    const probe = () => {
      probes++;
      return new Promise<number>((resolve) => (answer = resolve));
    };
    const first = link.refreshIfStale(probe);
    assert.ok(first, 'no RTT sample at all counts as stale');
    assert.equal(link.refreshIfStale(probe), undefined, 'one probe at a time');
    answer(35);
    await first;
    close(link.rttEstimate()?.mean, 35);
    advance(4_000);
    assert.equal(link.refreshIfStale(probe), undefined, 'fresh for probeIdleMs');
    advance(1_500);
    const second = link.refreshIfStale(probe);
    assert.ok(second, 'stale after 5.5 s without an RTT sample');
    answer(60);
    await second;
    assert.equal(probes, 2);
    close(link.rttEstimate()?.mean, 47.5);
  });

  test("a failed probe is swallowed: reachability is the circuit breaker's job", async () => {
    const link = new LinkEstimator(options);
    await link.refreshIfStale(() => Promise.reject(new Error('UNAVAILABLE')));
    assert.equal(link.rttEstimate(), undefined);
  });
});

describe('cloud estimator', () => {
  test('queue and compute per model from response parameters; compute follows the size sent', () => {
    const cloud = new CloudEstimator({ windowSize: 8, maxAgeMs: 30_000, timeoutMemoryMs: 10_000 });
    cloud.recordAnswer('image-ocr', 1_000_000, 4, 50);
    cloud.recordAnswer('image-ocr', 1_000_000, 6, 54);
    cloud.recordAnswer('image-ocr', 250_000, 6, 20);
    cloud.recordAnswer('text-intent', 20, 0, 1);
    close(cloud.queueEstimate('image-ocr')?.mean, 16 / 3);
    close(cloud.computeEstimate('image-ocr', 900_000)?.meanMs, 52);
    close(cloud.computeEstimate('image-ocr', 260_000)?.meanMs, 20);
    close(cloud.computeEstimate('text-intent', 18)?.meanMs, 1);
    assert.equal(cloud.computeEstimate('audio-vad', 3), undefined);
    assert.equal(cloud.answerAgeMs('audio-vad'), Infinity);
  });

  test('a timeout counts as queue time, so the cloud looks as slow as it was, but only for timeoutMemoryMs', () => {
    const { clock, advance } = manualClock();
    const cloud = new CloudEstimator({ windowSize: 4, maxAgeMs: 30_000, timeoutMemoryMs: 10_000, clock });
    cloud.recordAnswer('image-ocr', 1_000, 0, 30);
    cloud.recordTimeout('image-ocr', 2_000);
    close(cloud.queueEstimate('image-ocr')?.mean, 1_000);
    assert.equal(cloud.queueEstimate('image-ocr')?.high, 2_000);
    advance(10_001);
    assert.deepEqual(cloud.queueEstimate('image-ocr'), { mean: 0, high: 0, count: 1, ageMs: 10_001 }, 'the answer is still remembered, the timeout is not');
  });
});

describe('service time by input size', () => {
  test('measured sizes answer from their bucket; between buckets log-log interpolation; above, proportional; below, flat', () => {
    const { clock, advance } = manualClock();
    const curve = new ServiceTimeCurve(8, clock);
    curve.record(1_000, 10);
    curve.record(100_000, 1_000);
    advance(30);
    assert.deepEqual(curve.estimate(900), { meanMs: 10, highMs: 10, basis: 'measured', ageMs: 30 });
    const between = curve.estimate(10_000)!;
    assert.equal(between.basis, 'scaled');
    close(between.meanMs, 100, 1e-6);
    close(curve.estimate(400_000)?.meanMs, 4_000, 1e-6);
    close(curve.estimate(100)?.meanMs, 10);
    // A model that resizes every input to one side first (the encoders) costs no more above the largest size seen.
    assert.deepEqual(curve.estimate(400_000, 'flat'), { meanMs: 1_000, highMs: 1_000, basis: 'scaled', ageMs: 30 });
  });

  test('the encoders declare a flat cost past decoding, OCR a linear one', () => {
    assert.deepEqual(['image-encoder', 'video-encoder', 'image-ocr'].map((id) => getHandler(id).sizeScaling ?? 'linear'), ['flat', 'flat', 'linear']);
  });
});

describe('local estimator', () => {
  test('samples are stored as if the device were idle and scaled by the slowdown now; the queue ahead costs recent item times', () => {
    let slowdown: DeviceSlowdown = { ...idleDevice, factor: 2, contention: 2 };
    const local = new LocalEstimator({ windowSize: 8, slowdown: () => slowdown });
    local.record('image-ocr@fp32', 500_000, 400);
    slowdown = idleDevice;
    const idle = local.estimate('image-ocr@fp32', [500_000], 0)!;
    close(idle.computeMeanMs, 200);
    close(idle.queueMeanMs, 0);
    slowdown = { ...idleDevice, factor: 1.5, thermal: 1.5 };
    const busy = local.estimate('image-ocr@fp32', [500_000, 500_000], 1.5)!;
    close(busy.computeMeanMs, 600, 1e-6);
    close(busy.queueMeanMs, 450, 1e-6);
    assert.equal(busy.itemsAhead, 1.5);
    assert.equal(local.estimate('image-ocr@int8', [500_000], 0), undefined);
    assert.equal(local.estimate('image-ocr@fp32', [Number.NaN], 0), undefined, 'an unknown size has no estimate');
  });

  test("contention counts only other processes' cores against the cores there are; thermal only the clock", () => {
    assert.equal(slowdownFrom({ cores: 4, otherBusyCores: 1, cpuLoadPercent: 40, temperatureC: 50, clockRatio: 1 }, 1).factor, 1);
    close(slowdownFrom({ cores: 4, otherBusyCores: 4, cpuLoadPercent: 100, temperatureC: 50, clockRatio: 1 }, 2).factor, 1.5);
    close(slowdownFrom({ cores: 4, otherBusyCores: 0, cpuLoadPercent: 10, temperatureC: 92, clockRatio: 0.5 }, 1).factor, 2);
  });
});

describe('payload shaping', () => {
  const ocr = loadCatalog().models.find((m) => m.id === 'image-ocr');

  test('image-ocr declares long-side and JPEG-quality levels; every combination is an option whose costs add up', () => {
    const options = shapingOptionsOf(ocr);
    assert.equal(options.length, ocr!.payloadShaping!.maxSide.length * ocr!.payloadShaping!.jpegQuality.length);
    const option = options.find((o) => o.name === '640px q50')!;
    const side = ocr!.payloadShaping!.maxSide.find((l) => l.value === 640)!;
    const quality = ocr!.payloadShaping!.jpegQuality.find((l) => l.value === 50)!;
    close(option.accuracyCost, side.accuracyCost + quality.accuracyCost, 1e-4);
    assert.deepEqual(shapingOptionsOf(loadCatalog().models.find((m) => m.id === 'audio-vad')), []);
  });

  test("an image no strategy shaped goes at the config's size, but never past the largest side its model declares", () => {
    const catalog = loadCatalog();
    const offload = { imageMaxSide: 1280, jpegQuality: 85 };
    // The encoders resize to 224/299 px and declare 640 px as lossless: 1280 px would only cost uplink.
    assert.deepEqual(defaultShaping(offload, findModel(catalog, 'image-encoder')), { name: '640px q85', maxSide: 640, jpegQuality: 85, accuracyCost: 0 });
    // OCR reads small print: its largest declared side (1600) is above the config's, which stands.
    assert.deepEqual(defaultShaping(offload, ocr), { name: '1280px q85', maxSide: 1280, jpegQuality: 85, accuracyCost: 0 });
    assert.deepEqual(defaultShaping({ imageMaxSide: 320, jpegQuality: 70 }, findModel(catalog, 'image-encoder')).maxSide, 320, 'a smaller config side is kept');
    assert.deepEqual(defaultShaping(offload), defaultShaping(offload, findModel(catalog, 'audio-vad')), 'a model without levels takes the config as it is');
  });

  test("the agent's estimators shape an unplanned encode task at 640 px, an OCR task at the config's 1280 px, and text not at all", () => {
    const config = loadEdgeConfig(undefined, {});
    const estimators = idleEstimators(config);
    assert.equal(estimators.unplannedShaping(placementTask(config, 'image', { extras: { task: { image: 'encode' } } }))?.name, '640px q85');
    assert.equal(estimators.unplannedShaping(placementTask(config, 'image'))?.name, '1280px q85');
    assert.equal(estimators.unplannedShaping(placementTask(config, 'text')), undefined);
  });

  test('JPEG bytes follow resized pixels and quality, learned from real shrinks; the original is kept when not smaller', () => {
    assert.equal(resizedPixels(3200, 2400, 1600), 1600 * 1200);
    assert.equal(resizedPixels(480, 96, 1600), 480 * 96, 'never enlarged');
    assert.equal(relativeJpegSize(75), 1);
    close(relativeJpegSize(80), 1.15, 1e-9);
    const payload = new PayloadEstimator(8);
    const photo = { amount: 3200 * 2400, bytes: 3_000_000, width: 3200, height: 2400 };
    const option = { name: '1600px q75', maxSide: 1600, jpegQuality: 75, accuracyCost: 0.01 };
    close(payload.shape(photo, option)?.bytes, Math.round(1600 * 1200 * 0.15), 1);
    // This device's images compress to a third of a typical photo; shrinking 7.68 MP took 60 ms.
    payload.record({ option, outputPixels: 1600 * 1200, jpegBytes: 1600 * 1200 * 0.05, keptOriginal: false, prepareMs: 60 }, 3200 * 2400);
    const shaped = payload.shape(photo, option)!;
    close(shaped.bytes, 1600 * 1200 * 0.05, 1);
    assert.equal(shaped.pixels, 1600 * 1200);
    close(shaped.prepareMs, 60, 1e-9);
    const tinyPng = { amount: 480 * 96, bytes: 2_000, width: 480, height: 96 };
    const kept = payload.shape(tinyPng, { ...option, jpegQuality: 90 })!;
    assert.deepEqual([kept.bytes, kept.pixels], [2_000, 480 * 96]);
    close(kept.prepareMs, (480 * 96 * 60) / (3200 * 2400), 1e-9);
    assert.equal(payload.shape({ amount: Number.NaN, bytes: 100 }, option), undefined);
  });
});

describe('input size', () => {
  const handlerOf = (model: string) => getHandler(findModel(loadCatalog(), model).handler);

  test("each model's handler measures its inputs: pixels from the image header, seconds from WAV chunk sizes or raw PCM16 length, bytes of text", async () => {
    assert.deepEqual(await measureInputSize(handlerOf('image-ocr'), [readFixture('ocr', 'invoice.png')]), {
      unit: 'pixels',
      items: [{ amount: 480 * 96, bytes: readFixture('ocr', 'invoice.png').length, width: 480, height: 96 }],
    });
    const stereo = buildWav({ format: 1, channels: 2, sampleRate: 8000, bitsPerSample: 16 }, new Float32Array(2 * 8000 * 1.5));
    const audio = await measureInputSize(handlerOf('audio-vad'), [stereo, new Uint8Array(32_000)]);
    assert.equal(audio.unit, 'audio-seconds');
    close(audio.items[0]!.amount, 1.5);
    close(audio.items[1]!.amount, 1);
    const text = await measureInputSize(handlerOf('text-intent'), [new TextEncoder().encode('où est ma commande ?')]);
    assert.equal(text.items[0]!.amount, 21, 'UTF-8 bytes: ù takes two');
    const broken = await measureInputSize(handlerOf('image-ocr'), [readFixture('ocr', 'invoice.png').subarray(0, 20)]);
    assert.ok(Number.isNaN(broken.items[0]!.amount));
  });
});
