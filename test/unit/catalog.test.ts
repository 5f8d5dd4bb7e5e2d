import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { findModel, loadCatalog, resolveSource, verifiedPath } from '../../shared/catalog.js';
import { InferError } from '../../shared/errors.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';

const log = createLogger('test', 'silent');

test('the shipped catalog lists every model with verified files', async () => {
  const catalog = loadCatalog();
  const ids = catalog.models.map((m) => m.id);
  for (const id of ['image-ocr', 'audio-vad']) assert.ok(ids.includes(id), `${id} missing from catalog`);
  for (const model of catalog.models) {
    for (const ref of [...Object.values(model.assets), ...Object.values(model.variants).flatMap((v) => Object.values(v.graphs))]) {
      assert.equal(await verifiedPath(ref), resolveSource(ref.source));
    }
  }
});

test('an unknown model id is NOT_FOUND and names the models that exist', () => {
  assert.throws(() => findModel(loadCatalog(), 'nope'), (err: InferError) => err.code === 'NOT_FOUND' && /image-ocr/.test(err.message));
});

test('a missing model file is a clear error that says how to get it back', async () => {
  await assert.rejects(
    verifiedPath({ source: 'models/does-not-exist.onnx', sha256: '0'.repeat(64) }),
    (err: InferError) => err.code === 'FAILED_PRECONDITION' && /missing/.test(err.message) && /npm ci/.test(err.message),
  );
});

test('a corrupt model file is refused with both hashes', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'splitinfer-catalog-'));
  const model = findModel(loadCatalog(), 'audio-vad');
  const ref = model.variants.fp32!.graphs['silero-vad']!;
  const copy = path.join(dir, 'vad.onnx');
  await copyFile(resolveSource(ref.source), copy);
  await writeFile(copy, 'garbage', { flag: 'a' });
  await assert.rejects(verifiedPath({ source: copy, sha256: ref.sha256 }), (err: InferError) => /corrupt/.test(err.message) && err.message.includes(ref.sha256));
  const broken = { ...model, variants: { fp32: { graphs: { 'silero-vad': { source: copy, sha256: ref.sha256 } } } } };
  await assert.rejects(loadModel(broken, 'fp32', { providers: ['cpu'], intraOpThreads: 1 }, log), /corrupt/);
});

test('an unknown variant is NOT_FOUND and lists the variants', async () => {
  const model = findModel(loadCatalog(), 'audio-vad');
  await assert.rejects(loadModel(model, 'int4', { providers: ['cpu'], intraOpThreads: 1 }, log), (err: InferError) => err.code === 'NOT_FOUND' && /fp32/.test(err.message));
});

test('an invalid catalog file is rejected with the offending field', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'splitinfer-catalog-'));
  const file = path.join(dir, 'catalog.yaml');
  await writeFile(file, 'models:\n  - id: x\n    modality: smell\n    task: t\n    handler: h\n    variants: {}\n');
  assert.throws(() => loadCatalog(file), /modality/);
});

test('running a model does not block the event loop', async () => {
  const model = await loadModel(findModel(loadCatalog(), 'image-ocr'), 'fp32', { providers: ['cpu'], intraOpThreads: 1 }, log);
  try {
    const image = await readFile(path.join(packageRoot, 'models/samples/ocr/edge-notice.webp'));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await model.run(image);
    clearInterval(timer);
    // On the main thread the timer could only fire between the few session runs of the chain; on a worker it keeps firing.
    assert.ok(ticks >= 20, `timer fired ${ticks} times during inference`);
  } finally {
    await model.close();
  }
});
