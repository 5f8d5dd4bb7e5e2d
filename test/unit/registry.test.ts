/** The one registry behind model handlers, placement strategies and model evaluators. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getHandler } from '../../shared/handlers/handler.js';
import '../../shared/handlers/index.js';
import { Registry } from '../../shared/registry.js';
import { getEvaluator } from '../../models/toolchain/evaluator.js';
import '../../models/toolchain/evaluators.js';
import { ModelToolError } from '../../models/toolchain/onnx-model.js';

describe('registry', () => {
  test('returns what was registered under a name', () => {
    const registry = new Registry<number>({ kind: 'thing' });
    registry.register('one', 1);
    registry.register('two', 2);
    assert.equal(registry.get('two'), 2);
    assert.deepEqual(registry.names(), ['one', 'two']);
  });

  test('refuses a name registered twice', () => {
    const registry = new Registry<number>({ kind: 'thing' });
    registry.register('one', 1);
    assert.throws(() => registry.register('one', 2), /^Error: thing 'one' is registered twice$/);
  });

  test('an unknown name says what is registered and what to do, in the error type its callers expect', () => {
    const registry = new Registry<number>({ kind: 'thing', hint: 'import its module first', unknownError: ModelToolError });
    assert.throws(() => registry.get('one'), (err: Error) => err instanceof ModelToolError && err.message === "unknown thing 'one' (registered: none) — import its module first");
    registry.register('two', 2);
    assert.throws(() => registry.get('one'), /\(registered: two\)/);
  });

  test('model handlers and evaluators are found by the catalog handler id', () => {
    assert.equal(getHandler('image-ocr').id, 'image-ocr');
    assert.equal(getEvaluator('image-ocr').handlerId, 'image-ocr');
    assert.throws(() => getHandler('image-ocrr'), /unknown model handler 'image-ocrr' \(registered: .*image-ocr/);
    assert.throws(() => getEvaluator('image-ocrr'), (err: Error) => err instanceof ModelToolError && /register one for this handler in models\/toolchain\/evaluators.ts/.test(err.message));
  });
});
