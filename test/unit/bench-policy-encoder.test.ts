/**
 * bench:policy's image-encoder workload (issue 10): the workload it replays,
 * how it judges each answer's agreement with the heavy model, the oracle
 * that keeps to each request's quality floor, and the target verdicts. The
 * library runs the real encoders on a few real images; the records the
 * metrics judge are written out, as a replay would give them.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { profiledSite } from '../../edge/policy/static-profile.js';
import { ENCODER_LABELS } from '../../shared/handlers/image-encoder.js';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { encoderMetricsOf, encoderOracleOf, meetsFloor, summarizeEncoderTargets, type EncoderGroupOutcome, type EncoderPolicyMetrics, type EncoderReference } from '../bench/encoder-metrics.js';
import { encoderMarkdown, pooledByFloor, type EncoderBenchResults } from '../bench/encoder-report.js';
import { buildEncoderWorkload, encodeKindSpecs, floorMix, lightVariant, loadEncoderLibrary, type EncoderLibrary } from '../bench/encoder-workload.js';
import { oracleOf } from '../bench/metrics.js';
import type { RequestRecord, ReplayResult } from '../bench/replay.js';
import type { Quality } from '../../edge/request.js';

const heavy = 'inception-v3';

/** A replayed encode request as record() writes it. */
function answer(index: number, fields: { floor: Quality; latencyMs: number; by?: string; top1?: string; image?: string; failed?: boolean; site?: 'edge' | 'cloud' }): RequestRecord {
  const by = fields.by ?? heavy;
  return {
    index,
    kind: 'encode-640',
    modality: 'image',
    deadlineMs: 2_000,
    sentAtMs: index * 1000,
    latencyMs: fields.latencyMs,
    failed: fields.failed ?? false,
    lost: false,
    missed: (fields.failed ?? false) || fields.latencyMs > 2_000,
    site: fields.site ?? (by === heavy ? 'cloud' : 'edge'),
    floor: fields.floor,
    image: fields.image ?? 'a@640',
    ...(fields.failed ? {} : { answeredBy: by, top1: fields.top1 ?? 'neutral' }),
  };
}

const replay = (records: RequestRecord[], uplinkBytes = 0): ReplayResult => ({ records, calibration: [], uplinkBytes, downlinkBytes: 0, durationMs: 10_000 });

/** Image `a` is neutral to the heavy model, `b` drawing; the light variant agreed on 0.9 of the set. */
const reference: EncoderReference = { heavyTop1: new Map([['a@640', 'neutral'], ['b@640', 'drawing']]), lightAgreement: 0.9 };

describe('encoder workload', () => {
  let library: EncoderLibrary;
  before(async () => {
    library = await loadEncoderLibrary(1, 2);
  });

  test('the library holds every scene at every size, labelled by both encoders, with the light variant’s agreement measured on it', () => {
    assert.equal(library.images.length, 2 * encodeKindSpecs.length);
    for (const image of library.images) {
      assert.ok(ENCODER_LABELS.includes(image.heavyTop1 as (typeof ENCODER_LABELS)[number]) && ENCODER_LABELS.includes(image.lightTop1 as (typeof ENCODER_LABELS)[number]));
      assert.deepEqual([...image.bytes.subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
    }
    const agreeing = library.images.filter((image) => image.heavyTop1 === image.lightTop1).length;
    assert.equal(library.lightAgreement, Math.round((agreeing / library.images.length) * 1000) / 1000);
    assert.equal(library.catalogAgreement, findModel(loadCatalog(), 'image-encoder').variants[lightVariant]!.agreementWithReference);
    // Every size is offloaded at the encoder's largest declared side (640 px), so a bigger photo costs no more uplink.
    assert.ok(library.offloadBytes['encode-640'] > 1000);
    assert.ok(library.offloadBytes['encode-1920'] <= library.offloadBytes['encode-640'], `1920 px sends ${library.offloadBytes['encode-1920']} bytes, 640 px ${library.offloadBytes['encode-640']}`);
  });

  test('a seed gives the same encode requests, each with its kind’s deadline, an image of its size and a floor from the mix', () => {
    const options = { seed: 3, requests: 200, meanGapMs: 1000 };
    const workload = buildEncoderWorkload(library, options);
    assert.deepEqual(buildEncoderWorkload(library, options), workload);
    assert.notDeepEqual(buildEncoderWorkload(library, { ...options, seed: 4 }).map((r) => r.image), workload.map((r) => r.image));
    for (const request of workload) {
      const spec = encodeKindSpecs.find((s) => s.kind === request.kind)!;
      const image = library.images.find((i) => i.name === request.image)!;
      assert.equal(request.deadlineMs, spec.deadlineMs);
      assert.equal(image.kind, request.kind);
      assert.equal(request.inputs.image, image.bytes);
      assert.deepEqual(request.task, { image: 'encode' });
      assert.ok(floorMix.some((f) => f.floor === request.quality?.image));
    }
    for (const { floor } of floorMix) assert.ok(workload.some((r) => r.quality?.image === floor), `floor ${floor} drawn`);
    assert.ok(workload.every((r, i) => i === 0 || r.sendAtMs >= workload[i - 1]!.sendAtMs));
  });
});

describe('encoder agreement', () => {
  test('a heavy answer agrees by the model measure, a light one at the set’s measured rate; labels are checked as answered', () => {
    const records = [
      answer(0, { floor: 'best', latencyMs: 900, top1: 'neutral' }),
      answer(1, { floor: 'best', latencyMs: 900, image: 'b@640', top1: 'neutral' }), // a shrunk upload changed the heavy label
      answer(2, { floor: 'fast', latencyMs: 200, by: lightVariant, top1: 'neutral' }),
      answer(3, { floor: 'fast', latencyMs: 200, by: lightVariant, image: 'b@640', top1: 'neutral' }),
      answer(4, { floor: 0.9, latencyMs: 2_000, failed: true }),
    ];
    const m = encoderMetricsOf(records, 5_000, reference);
    assert.equal(m.requests, 5);
    assert.equal(m.failed, 1);
    assert.equal(m.lightShare, 0.5);
    assert.equal(m.modelAgreement, 0.95, '(1 + 1 + 0.9 + 0.9) / 4 answered');
    assert.equal(m.labelAgreement, 0.5);
    const byFloor = Object.fromEntries(m.byFloor.map((c) => [String(c.floor), c]));
    assert.deepEqual(Object.keys(byFloor), floorMix.map((f) => String(f.floor)));
    assert.deepEqual([byFloor.best!.modelAgreement, byFloor.best!.labelAgreement, byFloor.best!.lightShare], [1, 0.5, 0]);
    assert.deepEqual([byFloor.fast!.modelAgreement, byFloor.fast!.lightShare], [0.9, 1]);
    assert.deepEqual([byFloor['0.9']!.requests, byFloor['0.9']!.answered, byFloor['0.9']!.modelAgreement], [1, 0, null]);
    assert.deepEqual([byFloor['0.99']!.requests, byFloor['0.99']!.modelAgreement], [0, null]);
  });

  test('a light answer meets `fast` and a number the measured agreement reaches, never `best`', () => {
    const light = (floor: Quality) => answer(0, { floor, latencyMs: 100, by: lightVariant });
    assert.deepEqual([light('fast'), light(0.8), light(0.9), light(0.95), light('best')].map((r) => meetsFloor(r, reference)), [true, true, true, false, false]);
    assert.ok(meetsFloor(answer(0, { floor: 'best', latencyMs: 900 }), reference), 'the heavy model meets every floor');
  });
});

describe('encoder oracle', () => {
  test('per request the faster answer whose model meets the floor, with uplink bytes from the replay it came from', () => {
    const local = replay(
      [
        answer(0, { floor: 'fast', latencyMs: 200, by: lightVariant }),
        answer(1, { floor: 0.95, latencyMs: 150, by: lightVariant }), // as if the edge had let the light model answer
        answer(2, { floor: 'best', latencyMs: 1_200 }),
        answer(3, { floor: 0.8, latencyMs: 3_000, by: lightVariant }),
      ],
      30_000,
    );
    const cloud = replay([answer(0, { floor: 'fast', latencyMs: 900 }), answer(1, { floor: 0.95, latencyMs: 1_000 }), answer(2, { floor: 'best', latencyMs: 800 }), answer(3, { floor: 0.8, latencyMs: 1_000 })], 120_000);
    const offloadBytes = { 'encode-640': 10_000 };
    const oracle = encoderOracleOf(local, cloud, offloadBytes, reference);
    assert.deepEqual(
      oracle.records.map((r) => [r.latencyMs, r.answeredBy]),
      [
        [200, lightVariant],
        [1_000, heavy],
        [800, heavy],
        [1_000, heavy],
      ],
    );
    // The cloud replay sent 4 × 10 kB as 120 kB on the link, so 3 bytes a payload byte; the local one 1 × 10 kB as 30 kB.
    assert.equal(oracle.uplinkBytes, 3 * 30_000);
    assert.deepEqual(
      oracleOf(local, cloud, offloadBytes).records.map((r) => r.latencyMs),
      [200, 150, 800, 1_000],
      'without floors, simply the faster',
    );
  });
});

describe('encoder targets and report', () => {
  const metrics = (p95Ms: number, byFloor: { floor: Quality; modelAgreement: number | null; answered?: number }[]) =>
    ({
      p50Ms: p95Ms / 2,
      p95Ms,
      p99Ms: p95Ms,
      deadlineMissRate: 0,
      uplinkBytes: 0,
      requests: 10,
      failed: 0,
      cloudShare: 0.5,
      modelAgreement: 0.97,
      labelAgreement: 0.95,
      lightShare: 0.4,
      byFloor: byFloor.map((c) => ({ floor: c.floor, requests: 3, answered: c.answered ?? 3, lightShare: 0.5, modelAgreement: c.modelAgreement, labelAgreement: c.modelAgreement })),
    }) satisfies EncoderPolicyMetrics;
  const classes = (best: number) => [
    { floor: 'fast' as const, modelAgreement: 0.9 },
    { floor: 0.8, modelAgreement: 0.9 },
    { floor: 0.95, modelAgreement: 1 },
    { floor: 'best' as const, modelAgreement: best },
  ];

  test('adaptive meets both targets when its p95 is within 1.15× the oracle’s in every group and no floor class falls short', () => {
    const groups: EncoderGroupOutcome[] = [
      { name: 'encoder/a', policies: { adaptive: metrics(1100, classes(1)), oracle: metrics(1000, classes(1)) } },
      { name: 'encoder/b', policies: { adaptive: metrics(700, classes(1)), oracle: metrics(800, classes(1)) } },
    ];
    const summary = summarizeEncoderTargets(groups);
    assert.deepEqual(summary.adaptiveOverOracleP95, { target: 1.15, worst: 1.1, met: true, groups: [{ group: 'encoder/a', ratio: 1.1 }, { group: 'encoder/b', ratio: 0.875 }] });
    assert.deepEqual(summary.adaptiveAgreementMeetsFloor, { met: true, shortfalls: [], checked: 8 });
  });

  test('one slow group or one floor class below its floor fails the target, and the report says where', () => {
    const groups: EncoderGroupOutcome[] = [
      { name: 'encoder/a', policies: { adaptive: metrics(1200, classes(0.9)), oracle: metrics(1000, classes(1)) } },
      { name: 'encoder/b', policies: { adaptive: metrics(700, [{ floor: 'best', modelAgreement: null, answered: 0 }]), oracle: metrics(800, classes(1)) } },
    ];
    const summary = summarizeEncoderTargets(groups);
    assert.equal(summary.adaptiveOverOracleP95.met, false);
    assert.equal(summary.adaptiveOverOracleP95.worst, 1.2);
    assert.deepEqual(summary.adaptiveAgreementMeetsFloor, { met: false, shortfalls: [{ group: 'encoder/a', floor: 'best', modelAgreement: 0.9, floorValue: 1 }], checked: 4 });
    assert.equal(summarizeEncoderTargets([]).adaptiveAgreementMeetsFloor.met, false, 'nothing checked is nothing met');

    const pooled = pooledByFloor(groups, 'adaptive').find((c) => c.floor === 'best')!;
    assert.deepEqual([pooled.requests, pooled.answered, pooled.modelAgreement], [6, 3, 0.9], 'a class no request of a group answered does not weigh in');

    const conditions = { traceSet: 'set', trace: 't', traceOffsetS: 0, uplinkMeanMbps: 2, rttMs: 80, jitterMs: 8, edgeLoad: 'idle' as const, nominalRatio: 4, dutyShare: 0.25, throttlePeriodMs: 40, fixedOcr: { kind: 'image-1280', edgeComputeMs: 800, cloudComputeMs: 200, ratio: 4 }, staticProfile: {} };
    const results: EncoderBenchResults = {
      generatedAt: '2026-01-01T00:00:00.000Z',
      runSeconds: 60,
      setup: { mode: 'quick', seed: 1, requestsPerReplay: 10, meanGapMs: 1000, requestMix: encodeKindSpecs, tracesDir: 't', cpus: 2, pinning: 'p', throttle: 't', node: 'v20', floorMix, imageSource: 's', images: 6, lightAgreement: 0.944, catalogAgreement: 0.877 },
      groups: groups.map((g) => ({ ...g, conditions })),
      summary,
      notes: [],
    };
    const markdown = encoderMarkdown(results);
    assert.match(markdown, /\| adaptive p95 ≤ 1\.15 × oracle p95 in every group \| worst 1\.2 × \(encoder\/a: 1\.2; encoder\/b: 0\.875\) \| \*\*not met\*\* \|/);
    assert.match(markdown, /encoder\/a best: 0\.9 < 1 \| \*\*not met\*\* \|/);
    assert.match(markdown, /\| \*\*adaptive\*\* \| 600 \| 1200 \| 1\.20 \|/);
    assert.match(markdown, /agrees on \*\*0\.944\*\* of them \(catalog: 0\.877\)/);
  });
});

test('static-profile’s side for a profile: the cloud when RTT + upload + compute beat the edge', () => {
  assert.deepEqual(profiledSite({ edgeMs: 900, cloudMs: 60, payloadBytes: 100_000 }, 8, 40), { site: 'cloud', uploadMs: 100, cloudMs: 200 });
  assert.equal(profiledSite({ edgeMs: 150, cloudMs: 60, payloadBytes: 100_000 }, 8, 40).site, 'edge');
});
