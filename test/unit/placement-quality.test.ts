/**
 * The image `encode` task and the quality floor: a request picks the task
 * per modality, its settings come from config once, at split, and the
 * constraint step keeps a local variant whose measured agreement with the
 * reference (the cloud's fp32) is below the request's floor from answering.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadEdgeConfig } from '../../edge/config.js';
import { requestValidators, toAgentRequest } from '../../edge/ingress/payload.js';
import { splitRequest } from '../../edge/tasks.js';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { codesOf, placementTask, placer, unreachableCloud } from '../helpers/placement.js';

const strategies = ['rules', 'adaptive', 'always-local', 'always-cloud', 'confidence', 'static-profile'];
const light = 'mobilenet-v2-int8';
const declared = findModel(loadCatalog(), 'image-encoder').variants[light]!.agreementWithReference!;
const encode = (quality?: 'best' | 'fast' | number) => ({ task: { image: 'encode' as const }, ...(quality === undefined ? {} : { quality: { image: quality } }) });

describe('the image encode task', () => {
  test('a request asks for it per modality; its settings come from config modalities.image.encode', () => {
    const config = loadEdgeConfig();
    const task = placementTask(config, 'image', { extras: encode() });
    assert.deepEqual([task.settingsPath, task.model, task.settings.localVariant, task.settings.placement], ['image.encode', 'image-encoder', light, 'cloud']);
    assert.deepEqual(task.quality, { floor: 0, localAgreement: declared });
    const ocr = placementTask(config, 'image');
    assert.deepEqual([ocr.settingsPath, ocr.model], ['image', 'image-ocr']);
  });

  test('the catalog declares the light variant’s measured agreement with InceptionV3', () => {
    assert.ok(declared > 0.8 && declared < 1, `agreementWithReference ${declared}`);
  });

  test('a config without the encode task refuses the request, and the other modalities still split', () => {
    const config = loadEdgeConfig();
    delete config.modalities.image.encode;
    const split = splitRequest({ id: 'e1', inputs: { image: new Uint8Array([0x89, 0x50, 0x4e, 0x47]), text: 'hi' }, ...encode() }, config);
    assert.deepEqual(split.rejected.map((r) => [r.modality, r.error?.code]), [['image', 'FAILED_PRECONDITION']]);
    assert.match(split.rejected[0]!.error!.message, /modalities\.image\.encode/);
    assert.deepEqual(split.tasks.map((t) => t.modality), ['text']);
  });

  test('MQTT requests carry task and quality; a bad quality is refused with what it may be', () => {
    const validators = requestValidators({ maxVideoFrames: 4, maxDeadlineMs: 10_000, maxIdLength: 64 });
    const doc = { id: 'q1', inputs: { image: 'iVBORw0KGgo=' }, task: { image: 'encode' }, quality: { image: 0.9 } };
    const { request } = toAgentRequest(doc, 'json', validators);
    assert.deepEqual([request.task, request.quality], [{ image: 'encode' }, { image: 0.9 }]);
    assert.throws(() => toAgentRequest({ ...doc, quality: { image: 'good' } }, 'json', validators), /'quality\.image' must be 'best', 'fast' or a number from 0 to 1/);
    assert.throws(() => toAgentRequest({ ...doc, quality: { image: 1.5 } }, 'json', validators), /'quality\.image' must be 'best', 'fast'/);
    assert.throws(() => toAgentRequest({ ...doc, task: { text: 'encode' } }, 'json', validators), /only image has more than one task/);
  });
});

describe('the quality floor, under every strategy', () => {
  for (const name of strategies) {
    test(`${name}: best allows only the reference model: the cloud, over the request's preference for the edge`, () => {
      const { place } = placer(name);
      const decision = place('image', { prefer: 'edge', localVariant: light, extras: encode('best') });
      assert.deepEqual([decision.site, codesOf(decision), decision.constrained], ['cloud', ['quality-floor'], true]);
      assert.match(decision.reasons[0]!.text, /quality floor for image\.encode is best: only the reference model may answer, not the local mobilenet-v2-int8 variant/);
    });

    test(`${name}: best with the cloud down fails fast rather than answer with the light model`, () => {
      const decision = placer(name).place('image', { cloud: unreachableCloud, localVariant: light, extras: encode('best') });
      assert.deepEqual([decision.site, codesOf(decision)], ['cloud', ['quality-floor', 'cloud-down']]);
      assert.match(decision.reasons[1]!.text, /fails fast with UNAVAILABLE/);
    });

    test(`${name}: fast, or a floor the declared agreement meets, lets the light model answer`, () => {
      const { place } = placer(name);
      for (const quality of ['fast', declared, declared - 0.05] as const) {
        const decision = place('image', { prefer: 'edge', localVariant: light, extras: encode(quality) });
        assert.deepEqual([decision.site, codesOf(decision)], ['edge', ['preferred']], `quality ${quality}`);
      }
      const down = place('image', { cloud: unreachableCloud, localVariant: light, extras: encode('fast') });
      assert.deepEqual([down.site, codesOf(down)], ['edge', ['cloud-down']]);
    });

    test(`${name}: a floor above the declared agreement keeps the task in the cloud`, () => {
      const decision = placer(name).place('image', { prefer: 'edge', localVariant: light, extras: encode(0.99) });
      assert.deepEqual([decision.site, codesOf(decision)], ['cloud', ['quality-floor']]);
      assert.match(decision.reasons[0]!.text, new RegExp(`floor for image\\.encode is 0\\.99 top-1 agreement.*measured ${declared}\\)`));
    });
  }

  test('an edge that holds the reference variant meets best itself, and answers while the cloud is down', () => {
    const decision = placer('rules').place('image', { cloud: unreachableCloud, localVariant: 'fp32', extras: encode('best') });
    assert.deepEqual([decision.site, codesOf(decision)], ['edge', ['cloud-down']]);
  });

  test('the floor bounds the upload’s shaping too: best sends the image without loss, a number loses at most the rest', () => {
    const { place } = placer('adaptive');
    // Nothing is measured yet, so adaptive sends the fewest bytes its floor allows.
    const shapingOf = (quality: 'best' | 'fast' | number) => place('image', { localVariant: light, extras: encode(quality) }).shaping;
    assert.deepEqual([shapingOf('best')?.name, shapingOf('best')?.accuracyCost], ['640px q90', 0]);
    assert.equal(shapingOf(0.99)?.name, '640px q90', 'cheaper options cost 0.011 or more');
    const fast = shapingOf('fast')!;
    assert.equal(fast.name, '320px q50', 'fast: only the policy’s accuracyFloor (0.95) bounds it');
    assert.ok(1 - fast.accuracyCost >= 0.95);
  });

  test('config minAgreement is the floor of requests that set none; a request’s quality overrides it', () => {
    const { place } = placer('rules', { modalities: { image: { encode: { minAgreement: 0.99 } } } });
    assert.deepEqual(codesOf(place('image', { prefer: 'edge', localVariant: light, extras: encode() })), ['quality-floor']);
    assert.deepEqual(codesOf(place('image', { prefer: 'edge', localVariant: light, extras: encode('fast') })), ['preferred']);
  });

  test('a local variant without a measured agreement meets no numeric floor (OCR int8)', () => {
    const decision = placer('rules').place('image', { prefer: 'edge', localVariant: 'int8', extras: { quality: { image: 0.5 } } });
    assert.deepEqual([decision.site, codesOf(decision)], ['cloud', ['quality-floor']]);
    assert.match(decision.reasons[0]!.text, /does not meet \(no measured agreement\)/);
  });

  test('a config pin to the edge still keeps the task on the device: nothing leaves it', () => {
    const { place } = placer('rules', { modalities: { image: { encode: { pin: 'edge' } } } });
    assert.deepEqual(codesOf(place('image', { localVariant: light, extras: encode('best') })), ['pinned']);
  });
});
