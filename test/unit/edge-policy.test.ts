/**
 * The constraint step every strategy shares (pins, prefer, a cloud that is
 * down, a missing local variant), the `rules` strategy, reason codes and the
 * strategy registry, on fixed inputs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { renderWhy } from '../../edge/policy/reasons.js';
import { rulesStrategyName } from '../../edge/policy/rules.js';
import { createPlacementStrategy, registerPlacementStrategy } from '../../edge/policy/strategy.js';
import { codesOf, placer, unreachableCloud } from '../helpers/placement.js';

const strategies = ['rules', 'adaptive', 'always-local', 'always-cloud', 'confidence', 'static-profile'];
const pinned = (modality: string, pin: string) => ({ modalities: { [modality]: { pin } } });

describe('the constraint step, under every strategy', () => {
  for (const name of strategies) {
    test(`${name}: a pin to the edge keeps the task on the device, over the request's preference and a healthy cloud`, () => {
      const { place } = placer(name, pinned('image', 'edge'));
      const decision = place('image', { prefer: 'cloud' });
      assert.equal(decision.site, 'edge');
      assert.deepEqual(codesOf(decision), ['pinned']);
      assert.equal(decision.constrained, true);
    });

    test(`${name}: a pin to the cloud offloads, and gives way to a down cloud only when a local variant exists`, () => {
      const { place } = placer(name, pinned('text', 'cloud'));
      assert.equal(place('text').site, 'cloud');
      assert.deepEqual(codesOf(place('text')).slice(0, 1), ['pinned']);
      const down = place('text', { cloud: unreachableCloud });
      assert.deepEqual([down.site, codesOf(down)], ['edge', ['pinned', 'cloud-down']]);
      const nowhere = place('text', { cloud: unreachableCloud, localVariant: null });
      assert.deepEqual([nowhere.site, codesOf(nowhere)], ['cloud', ['pinned', 'cloud-down']]);
    });

    test(`${name}: the request's prefer decides the side; the edge needs a local variant`, () => {
      const { place } = placer(name);
      assert.deepEqual([place('text', { prefer: 'cloud' }).site, codesOf(place('text', { prefer: 'cloud' }))[0]], ['cloud', 'preferred']);
      assert.deepEqual([place('image', { prefer: 'edge' }).site, codesOf(place('image', { prefer: 'edge' }))], ['edge', ['preferred']]);
      const noLocal = place('image', { prefer: 'edge', localVariant: null });
      assert.deepEqual([noLocal.site, codesOf(noLocal)], ['cloud', ['preferred', 'no-local-variant']]);
      const down = place('audio', { prefer: 'cloud', cloud: unreachableCloud });
      assert.deepEqual([down.site, codesOf(down)], ['edge', ['preferred', 'cloud-down']]);
    });

    test(`${name}: without a local variant the task goes to the cloud; with the cloud down it runs on the edge`, () => {
      const { place } = placer(name);
      const noLocal = place('text', { localVariant: null });
      assert.deepEqual([noLocal.site, codesOf(noLocal)], ['cloud', ['no-local-variant']]);
      const down = place('image', { cloud: { state: 'half-open', consecutiveFailures: 3 } });
      assert.deepEqual([down.site, codesOf(down)], ['edge', ['cloud-down']]);
      const nowhere = place('image', { cloud: unreachableCloud, localVariant: null });
      assert.deepEqual([nowhere.site, codesOf(nowhere)], ['cloud', ['no-local-variant', 'cloud-down']]);
    });
  }

  test('a constrained decision is frozen and names the strategy and the circuit in its estimates', () => {
    const decision = placer('rules').place('image', { cloud: unreachableCloud });
    assert.ok(Object.isFrozen(decision) && Object.isFrozen(decision.reasons) && Object.isFrozen(decision.estimates));
    assert.deepEqual(decision.estimates, { strategy: 'rules', cloudCircuit: 'open', localVariant: 'fp32' });
  });

  test('pinning a modality to the edge without a local variant is a config error', () => {
    assert.throws(() => loadEdgeConfig(undefined, { modalities: { image: { pin: 'edge', localVariant: '' } } }), /modalities\.image\.pin is 'edge', but its localVariant is ''/);
  });
});

describe('rules placement', () => {
  test('config decides a free task: text and audio on the edge, image and video in the cloud', () => {
    const { place } = placer('rules');
    for (const [modality, site] of [['text', 'edge'], ['audio', 'edge'], ['image', 'cloud'], ['video', 'cloud']] as const) {
      const decision = place(modality);
      assert.deepEqual([decision.site, codesOf(decision), decision.constrained], [site, ['configured'], false], modality);
    }
  });

  test('why is rendered from the reasons, in order', () => {
    const { place } = placer('rules');
    assert.equal(renderWhy(place('text').reasons), 'config places text on the edge (local fp32 variant)');
    const down = place('image', { prefer: 'cloud', cloud: unreachableCloud });
    assert.match(
      renderWhy(down.reasons),
      /^the request prefers the cloud for image; the cloud is unavailable \(circuit open: unreachable .*ECONNREFUSED.*\), so it runs on the edge with the local fp32 variant$/,
    );
    const nowhere = place('image', { cloud: unreachableCloud, localVariant: null });
    assert.match(renderWhy(nowhere.reasons), /^image has no local variant, so it runs in the cloud; the cloud is unavailable .*, so it fails fast with UNAVAILABLE$/);
  });
});

describe('placement strategy registry', () => {
  test('a strategy registered by name is created with the config; names are unique', () => {
    registerPlacementStrategy('always-edge-test', (cfg) => ({
      name: 'always-edge-test',
      choose: () => ({ site: 'edge', reasons: [{ code: 'fixed-side', text: `always the edge on ${cfg.deviceId}` }], estimates: {} }),
    }));
    const config = loadEdgeConfig();
    const strategy = createPlacementStrategy('always-edge-test', config);
    assert.equal(strategy.name, 'always-edge-test');
    assert.deepEqual(codesOf(placer('always-edge-test').place('image')), ['fixed-side']);
    assert.throws(() => registerPlacementStrategy('always-edge-test', () => strategy), /registered twice/);
    assert.equal(createPlacementStrategy(rulesStrategyName, config).name, 'rules');
  });

  test('an unknown strategy name fails with the registered names', () => {
    assert.throws(() => createPlacementStrategy('latency-aware-typo', loadEdgeConfig()), /unknown placement strategy 'latency-aware-typo' \(registered: .*rules/);
  });
});
