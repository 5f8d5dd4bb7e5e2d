/**
 * The baseline strategies the benchmark compares `adaptive` with, on fixed
 * inputs: always-local, always-cloud, confidence (hard-example mining) and
 * static-profile; and that every strategy is selectable by name.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InferError } from '../../shared/errors.js';
import { renderWhy } from '../../edge/policy/reasons.js';
import { codesOf, placementTask, placer } from '../helpers/placement.js';

describe('baseline strategies', () => {
  test('every strategy is registered by name', () => {
    for (const name of ['rules', 'adaptive', 'always-local', 'always-cloud', 'confidence', 'static-profile']) assert.equal(placer(name).strategy.name, name);
  });

  test('always-local runs on the edge whenever a local variant exists; always-cloud always offloads', () => {
    const local = placer('always-local');
    assert.deepEqual([local.place('image').site, codesOf(local.place('image'))], ['edge', ['fixed-side']]);
    assert.deepEqual(codesOf(local.place('image', { localVariant: null })), ['no-local-variant']);
    const cloud = placer('always-cloud').place('text');
    assert.deepEqual([cloud.site, codesOf(cloud)], ['cloud', ['fixed-side']]);
    assert.equal(renderWhy(cloud.reasons), 'always-cloud runs text in the cloud');
  });

  test('static-profile compares the offline profile at its nominal link once per modality and keeps that answer', () => {
    const { place } = placer('static-profile', {
      policy: {
        staticProfile: {
          uplinkMbps: 8,
          rttMs: 40,
          modalities: { image: { edgeMs: 900, cloudMs: 60, payloadBytes: 100_000 }, audio: { edgeMs: 20, cloudMs: 5, payloadBytes: 200_000 } },
        },
      },
    });
    const image = place('image');
    assert.deepEqual([image.site, codesOf(image)], ['cloud', ['profiled']]);
    assert.deepEqual(image.estimates, { profile: { edgeMs: 900, cloudMs: 60, payloadBytes: 100_000 }, nominalUplinkMbps: 8, nominalRttMs: 40, cloudMs: 200, edgeMs: 900 });
    assert.equal(renderWhy(image.reasons), 'static-profile placed image once from its offline profile at 8 Mbit/s: cloud 200 ms (rtt 40 + upload 100 + compute 60) vs edge 900 ms');
    assert.equal(place('audio').site, 'edge');
    const unprofiled = place('text');
    assert.deepEqual([unprofiled.site, unprofiled.estimates], ['edge', {}]);
    // The cloud coming back later does not change the profile's answer.
    assert.equal(place('image', { cloud: { state: 'open', consecutiveFailures: 5 } }).site, 'edge', 'the constraint step still keeps a down cloud out');
    assert.equal(place('image').site, 'cloud');
  });
});

describe('confidence strategy (hard-example mining)', () => {
  test("confidence is the task's model handler's: intent probability, mean OCR line score, VAD max probability distance from 0.5, a video chunk's top label score", () => {
    const config = placer('confidence').config;
    const [text, image, video, audio] = (['text', 'image', 'video', 'audio'] as const).map((modality) => placementTask(config, modality).handler);
    assert.equal(text!.confidence({ intent: 'refund', confidence: 0.42 }), 0.42);
    assert.equal(image!.confidence({ lines: [{ score: 0.9 }, { score: 0.7 }] }), 0.8);
    assert.equal(image!.confidence({ lines: [] }), 0, 'nothing found is not confident');
    assert.equal(video!.confidence({ labels: [{ label: 'neutral', score: 0.6 }, { label: 'drawing', score: 0.3 }] }), 0.6);
    assert.equal(audio!.confidence({ frames: { maxProbability: 0.98 } })!.toFixed(2), '0.96');
    assert.equal(audio!.confidence({ frames: { maxProbability: 0.55 } })!.toFixed(2), '0.10');
  });

  test('runs on the edge first and asks the cloud only when the edge result is under the threshold; the cloud answer replaces it', async () => {
    const { strategy, place, config } = placer('confidence', { policy: { confidenceThreshold: 0.8 } });
    assert.deepEqual([place('text').site, codesOf(place('text'))], ['edge', ['fixed-side']]);
    const task = placementTask(config, 'text');
    let asked = 0;
    const cloud = async (budgetMs: number) => {
      asked++;
      assert.ok(budgetMs > 0 && budgetMs < task.deadlineMs, `budget ${budgetMs} ms within the deadline`);
      return { result: { intent: 'refund', confidence: 0.99 } };
    };
    assert.equal(await strategy.review!(task, { result: { confidence: 0.95 } }, cloud), undefined);
    assert.equal(asked, 0);
    const review = await strategy.review!(task, { result: { confidence: 0.5 } }, cloud);
    assert.deepEqual([review?.reason.code, review?.outcome, asked], ['escalated-low-confidence', 'cloud-answered', 1]);
    assert.match(review!.reason.text, /^the edge result's confidence 0\.50 is under the 0\.8 threshold \(a hard example\), so the cloud ran it too/);
  });

  test("when the cloud fails or no time is left, the edge's answer stands and the review says why", async () => {
    const { strategy, config } = placer('confidence', { policy: { confidenceThreshold: 0.8 } });
    const failing = await strategy.review!(placementTask(config, 'text'), { result: { confidence: 0.1 } }, async () => {
      throw new InferError('UNAVAILABLE', 'the cloud tier is unavailable');
    });
    assert.deepEqual([failing?.outcome, failing?.error], ['cloud-failed', { code: 'UNAVAILABLE', message: 'the cloud tier is unavailable' }]);
    const late = placementTask(config, 'text', { deadlineMs: 1, now: performance.now() - 5 });
    const noTime = await strategy.review!(late, { result: { confidence: 0.1 } }, async () => assert.fail('no time to ask the cloud'));
    assert.equal(noTime?.outcome, 'no-time');
  });
});
