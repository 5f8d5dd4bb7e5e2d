import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { findModel, loadCatalog, resolveSource } from '../../shared/catalog.js';
import { createLogger } from '../../shared/log.js';
import { detectProviderHost, selectProviders } from '../../shared/ort/providers.js';
import { openSession } from '../../shared/ort/session.js';

const gpuHost = { cudaLibraryInstalled: true, nvidiaDevicePresent: true };

test('cuda is chosen first on a host with the CUDA provider library and a GPU', () => {
  assert.deepEqual(selectProviders(['cuda', 'cpu'], gpuHost), { providers: ['cuda', 'cpu'], skipped: [] });
});

test('cuda without the CUDA provider library falls back to cpu and says how to install it', () => {
  const selection = selectProviders(['cuda', 'cpu'], { cudaLibraryInstalled: false, nvidiaDevicePresent: true });
  assert.deepEqual(selection.providers, ['cpu']);
  assert.equal(selection.skipped[0]?.provider, 'cuda');
  assert.match(selection.skipped[0]!.reason, /--onnxruntime-node-install=cuda12/);
});

test('cuda without a GPU falls back to cpu with the reason', () => {
  const selection = selectProviders(['cuda'], { cudaLibraryInstalled: true, nvidiaDevicePresent: false });
  assert.deepEqual(selection.providers, ['cpu']);
  assert.match(selection.skipped[0]!.reason, /no NVIDIA GPU/);
});

test('cpu is always the last resort and unknown providers are reported', () => {
  const selection = selectProviders(['tpu'], gpuHost);
  assert.deepEqual(selection.providers, ['cpu']);
  assert.match(selection.skipped[0]!.reason, /unknown execution provider 'tpu'/);
  assert.deepEqual(selectProviders(['cpu', 'cuda'], gpuHost).providers, ['cpu', 'cuda']);
});

test('asking for cuda on this machine opens the session on cpu and logs why', async (t) => {
  const host = detectProviderHost();
  if (host.cudaLibraryInstalled && host.nvidiaDevicePresent) {
    t.skip('this machine has a usable GPU; the fallback cannot happen here');
    return;
  }
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = createLogger('test', 'info', sink);
  const model = findModel(loadCatalog(), 'audio-vad');
  const ref = model.variants.fp32!.graphs['silero-vad']!;
  const session = await openSession('silero-vad', resolveSource(ref.source), { providers: ['cuda', 'cpu'], intraOpThreads: 1 }, log);
  try {
    assert.equal(session.provider, 'cpu');
    const warning = lines.find((l) => l.provider === 'cuda' && l.level === 40);
    assert.ok(warning, `expected a warning about cuda, got ${JSON.stringify(lines)}`);
    assert.match(String(warning.reason), /CUDA|GPU/);
  } finally {
    await session.close();
  }
});
