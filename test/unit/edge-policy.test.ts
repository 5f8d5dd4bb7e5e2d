/**
 * The `rules` placement strategy on fixed inputs, and the strategy registry
 * that lets the latency-aware policy drop in beside it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { decideByRules, rulesStrategyName } from '../../edge/policy/rules.js';
import { createPlacementStrategy, registerPlacementStrategy, type CloudHealth, type PlacementContext } from '../../edge/policy/strategy.js';
import type { Modality, Site } from '../../edge/request.js';
import { splitRequest, type Task } from '../../edge/tasks.js';

const config = loadEdgeConfig();
const healthy: CloudHealth = { state: 'closed', consecutiveFailures: 0 };
const unreachable: CloudHealth = { state: 'open', consecutiveFailures: 3, lastError: 'unreachable (UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:9)' };

const inputs = {
  text: 'where is my parcel',
  audio: new Uint8Array([1, 2, 3, 4]),
  image: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]),
  video: [new Uint8Array([0xff, 0xd8, 0xff, 0xe0])],
};

function task(modality: Modality, prefer?: Site): Task {
  const { tasks } = splitRequest({ id: 'r1', inputs: { [modality]: inputs[modality] }, prefer: prefer && { [modality]: prefer } }, config);
  assert.equal(tasks.length, 1);
  return tasks[0]!;
}

const context = (cloud: CloudHealth, localVariant: string | undefined): PlacementContext => ({ cloud, localVariant, config });

describe('rules placement', () => {
  test('with a healthy cloud and no preference, config decides: text and audio on the edge, image and video in the cloud', () => {
    for (const modality of ['text', 'audio'] as const) {
      const decision = decideByRules(task(modality), context(healthy, 'fp32'));
      assert.equal(decision.site, 'edge', modality);
      assert.equal(decision.why, `config places ${modality} on the edge (local fp32 variant)`);
      assert.equal(decision.estimates.rule, 'config');
    }
    for (const modality of ['image', 'video'] as const) {
      const decision = decideByRules(task(modality), context(healthy, 'fp32'));
      assert.equal(decision.site, 'cloud', modality);
      assert.equal(decision.why, `config places ${modality} in the cloud`);
    }
  });

  test("the request's prefer overrides config either way", () => {
    const toCloud = decideByRules(task('text', 'cloud'), context(healthy, 'fp32'));
    assert.equal(toCloud.site, 'cloud');
    assert.equal(toCloud.why, 'the request prefers the cloud for text');
    assert.equal(toCloud.estimates.rule, 'prefer');
    const toEdge = decideByRules(task('image', 'edge'), context(healthy, 'fp32'));
    assert.equal(toEdge.site, 'edge');
    assert.equal(toEdge.why, 'the request prefers the edge for image (local fp32 variant)');
  });

  test('a cloud-placed task runs on the edge when the circuit is open and a local variant exists, and says why', () => {
    const decision = decideByRules(task('image'), context(unreachable, 'fp32'));
    assert.equal(decision.site, 'edge');
    assert.match(decision.why, /^config places image in the cloud, but the cloud is unavailable \(circuit open: unreachable .*ECONNREFUSED.*\), so it runs on the edge with the local fp32 variant$/);
    assert.equal(decision.estimates.cloudCircuit, 'open');
  });

  test('a half-open circuit (probe in flight) counts as unavailable too', () => {
    const decision = decideByRules(task('video'), context({ state: 'half-open', consecutiveFailures: 3 }, 'fp32'));
    assert.equal(decision.site, 'edge');
    assert.match(decision.why, /circuit half-open/);
  });

  test('without a local variant a cloud-placed task still goes to the cloud when the circuit is open, to fail fast', () => {
    const decision = decideByRules(task('image'), context(unreachable, undefined));
    assert.equal(decision.site, 'cloud');
    assert.match(decision.why, /the cloud is unavailable .* and image has no local variant, so it fails fast with UNAVAILABLE$/);
    assert.equal(decision.estimates.localVariant, null);
  });

  test('an edge-placed task without a local variant runs in the cloud', () => {
    const decision = decideByRules(task('text'), context(healthy, undefined));
    assert.equal(decision.site, 'cloud');
    assert.equal(decision.why, 'config places text on the edge, but text has no local variant, so it runs in the cloud');
    const down = decideByRules(task('audio', 'edge'), context(unreachable, undefined));
    assert.equal(down.site, 'cloud');
    assert.match(down.why, /has no local variant and the cloud is unavailable .*fail fast with UNAVAILABLE$/);
  });

  test('a preference for the cloud gives way to an open circuit when the edge can run it', () => {
    const decision = decideByRules(task('audio', 'cloud'), context(unreachable, 'fp32'));
    assert.equal(decision.site, 'edge');
    assert.match(decision.why, /^the request prefers the cloud for audio, but the cloud is unavailable/);
  });
});

describe('placement strategy registry', () => {
  test("'rules' is registered and creates a strategy that decides like decideByRules", async () => {
    const strategy = createPlacementStrategy(rulesStrategyName, config);
    assert.equal(strategy.name, 'rules');
    assert.deepEqual(await strategy.decide(task('image'), context(healthy, 'fp32')), decideByRules(task('image'), context(healthy, 'fp32')));
  });

  test('a strategy registered by name is created with the config; names are unique', () => {
    registerPlacementStrategy('always-edge-test', (cfg) => ({
      name: 'always-edge-test',
      decide: () => ({ site: 'edge', why: `always the edge on ${cfg.deviceId}`, estimates: {} }),
    }));
    const strategy = createPlacementStrategy('always-edge-test', config);
    assert.deepEqual(strategy.decide(task('image'), context(healthy, 'fp32')), { site: 'edge', why: 'always the edge on device-1', estimates: {} });
    assert.throws(() => registerPlacementStrategy('always-edge-test', () => strategy), /registered twice/);
  });

  test('an unknown strategy name fails with the registered names', () => {
    assert.throws(() => createPlacementStrategy('latency-aware-typo', config), /unknown placement strategy 'latency-aware-typo' \(registered: .*rules/);
  });
});
