/**
 * The baseline strategies the benchmark compares `adaptive` with, on fixed
 * inputs: always-local, always-cloud, confidence (hard-example mining) and
 * static-profile; and that every strategy is selectable by name.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { edgeConfidence } from '../../edge/policy/confidence.js';
import { createPlacementStrategy, type CloudHealth, type PlacementContext, type PlacementDecision } from '../../edge/policy/strategy.js';
import '../../edge/policy/strategies.js';
import type { Modality } from '../../edge/request.js';
import { splitRequest, type Task } from '../../edge/tasks.js';

const healthy: CloudHealth = { state: 'closed', consecutiveFailures: 0 };
const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]);

function task(modality: Modality): Task {
  const config = loadEdgeConfig();
  const inputs = { text: { text: 'Where is my order?' }, audio: { audio: new Uint8Array(64) }, image: { image: png }, video: { video: [png] } }[modality];
  return splitRequest({ id: 'b1', inputs }, config).tasks[0]!;
}

function decide(name: string, modality: Modality, localVariant: string | undefined, policy: Record<string, unknown> = {}): PlacementDecision {
  const config = loadEdgeConfig(undefined, { policy });
  const context: PlacementContext = { cloud: healthy, localVariant, config };
  return createPlacementStrategy(name, config).decide(task(modality), context) as PlacementDecision;
}

describe('baseline strategies', () => {
  test('every strategy is registered by name', () => {
    const config = loadEdgeConfig();
    for (const name of ['rules', 'adaptive', 'always-local', 'always-cloud', 'confidence', 'static-profile']) {
      assert.equal(createPlacementStrategy(name, config).name, name);
    }
  });

  test('always-local runs on the edge whenever a local variant exists; always-cloud always offloads', () => {
    assert.equal(decide('always-local', 'image', 'fp32').site, 'edge');
    assert.equal(decide('always-local', 'image', undefined).site, 'cloud');
    assert.equal(decide('always-cloud', 'text', 'fp32').site, 'cloud');
    assert.equal(decide('always-cloud', 'text', 'fp32').why, 'always-cloud offloads text');
  });

  test('static-profile compares the offline profile at its nominal link once per modality and keeps that answer', () => {
    const config = loadEdgeConfig(undefined, {
      policy: {
        staticProfile: {
          uplinkMbps: 8,
          rttMs: 40,
          modalities: { image: { edgeMs: 900, cloudMs: 60, payloadBytes: 100_000 }, audio: { edgeMs: 20, cloudMs: 5, payloadBytes: 200_000 } },
        },
      },
    });
    const strategy = createPlacementStrategy('static-profile', config);
    const context: PlacementContext = { cloud: healthy, localVariant: 'fp32', config };
    const image = strategy.decide(task('image'), context) as PlacementDecision;
    assert.equal(image.site, 'cloud');
    assert.equal(image.why, 'static-profile placed image once from its offline profile at 8 Mbit/s: cloud 200 ms (rtt 40 + upload 100 + compute 60) vs edge 900 ms');
    assert.equal((strategy.decide(task('audio'), context) as PlacementDecision).site, 'edge');
    const unprofiled = strategy.decide(task('text'), context) as PlacementDecision;
    assert.equal(unprofiled.why, 'static-profile has no offline profile for text, so it runs where config places it (edge)');
    // Whatever happens to the cloud later, the profile's answer stands (the agent's fallback handles failures).
    const later = strategy.decide(task('image'), { ...context, cloud: { state: 'open', consecutiveFailures: 5 } }) as PlacementDecision;
    assert.equal(later.site, 'cloud');
  });
});

describe('confidence strategy (hard-example mining)', () => {
  test("confidence is the task's model handler's: intent probability, mean OCR line score, VAD max probability distance from 0.5; video its least confident frame", () => {
    const [text, image, video, audio] = (['text', 'image', 'video', 'audio'] as const).map(task);
    assert.equal(edgeConfidence('text', { intent: 'refund', confidence: 0.42 }, text!.handler), 0.42);
    assert.equal(edgeConfidence('image', { lines: [{ score: 0.9 }, { score: 0.7 }] }, image!.handler), 0.8);
    assert.equal(edgeConfidence('image', { lines: [] }, image!.handler), 0, 'nothing found is not confident');
    assert.equal(edgeConfidence('video', { frames: [{ lines: [{ score: 0.95 }] }, { lines: [{ score: 0.6 }] }] }, video!.handler), 0.6);
    assert.equal(edgeConfidence('audio', { frames: { maxProbability: 0.98 } }, audio!.handler)!.toFixed(2), '0.96');
    assert.equal(edgeConfidence('audio', { frames: { maxProbability: 0.55 } }, audio!.handler)!.toFixed(2), '0.10');
  });

  test('runs on the edge first and asks for the cloud only when the edge result is under the threshold', () => {
    const config = loadEdgeConfig(undefined, { policy: { confidenceThreshold: 0.8 } });
    const strategy = createPlacementStrategy('confidence', config);
    const decision = strategy.decide(task('text'), { cloud: healthy, localVariant: 'fp32', config }) as PlacementDecision;
    assert.equal(decision.site, 'edge');
    assert.equal(strategy.escalate?.(task('text'), { confidence: 0.95 }), undefined);
    assert.equal(strategy.escalate?.(task('text'), { confidence: 0.5 }), "the edge result's confidence 0.50 is under the 0.8 threshold (a hard example)");
    assert.equal((strategy.decide(task('image'), { cloud: healthy, localVariant: undefined, config }) as PlacementDecision).site, 'cloud');
  });
});
