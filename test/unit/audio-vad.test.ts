import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { InferError } from '../../shared/errors.js';
import { DEFAULT_SEGMENT_OPTIONS, speechSegments } from '../../shared/handlers/audio-vad.js';
import { decodeAudio, encodeWavPcm16, resample } from '../../shared/handlers/wav.js';
import { loadModel, type LoadedModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { packageRoot } from '../../shared/paths.js';
import { seededRandom } from '../../shared/seeded-random.js';
import { buildWav, chunk, fmtChunk, riff } from '../helpers/build-wav.js';

interface Segment {
  startMs: number;
  endMs: number;
}

const FRAME_MS = 32;
const fixture = (name: string) => readFileSync(path.join(packageRoot, 'models', 'samples', 'audio', name));

/**
 * Where the recording is really not silent: 10 ms windows peaking above
 * -60 dBFS, joined across gaps shorter than 400 ms (the gaps between words),
 * so the 1 s pause between the two sentences is what separates regions.
 */
function loudRegions(samples: Float32Array): Segment[] {
  const windowSamples = 160;
  const regions: Segment[] = [];
  for (let w = 0; w * windowSamples < samples.length; w++) {
    let peak = 0;
    for (let i = w * windowSamples; i < Math.min(samples.length, (w + 1) * windowSamples); i++) peak = Math.max(peak, Math.abs(samples[i]!));
    if (peak < 0.001) continue;
    const last = regions.at(-1);
    if (last && w * 10 - last.endMs < 400) last.endMs = (w + 1) * 10;
    else regions.push({ startMs: w * 10, endMs: (w + 1) * 10 });
  }
  return regions;
}

function assertSameSegments(actual: Segment[], expected: Segment[], toleranceMs: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`);
  actual.forEach((s, i) => {
    for (const edge of ['startMs', 'endMs'] as const) {
      const diff = Math.abs(s[edge] - expected[i]![edge]);
      assert.ok(diff <= toleranceMs, `${label}: segment ${i} ${edge} ${s[edge]} is ${diff} ms from ${expected[i]![edge]} (tolerance ${toleranceMs})`);
    }
  });
}

function gaussianNoise(seconds: number, rms: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: 16000 * seconds }, () => rms * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
}

/** Brown (1/f²) noise: leaky-integrated white noise, scaled to the given RMS. */
function brownNoise(seconds: number, rms: number, seed: number): Float32Array {
  const white = gaussianNoise(seconds, 1, seed);
  let level = 0;
  const brown = white.map((x) => (level = 0.995 * level + x));
  const actual = Math.sqrt(brown.reduce((sum, x) => sum + x * x, 0) / brown.length);
  return brown.map((x) => (x * rms) / actual);
}

describe('audio-vad handler (Silero VAD v5)', () => {
  let model: LoadedModel;
  before(async () => {
    model = await loadModel(findModel(loadCatalog(), 'audio-vad'), 'fp32', { providers: ['cpu'], intraOpThreads: 1 }, createLogger('test', 'silent'));
  });
  after(async () => {
    await model?.close();
  });

  const segmentsOf = async (input: Uint8Array) => (await model.run(input)).result.segments as Segment[];

  for (const name of ['speech-en.wav', 'speech-zh.wav']) {
    it(`${name}: one segment per sentence, matching where the audio is loud within ±300 ms`, async () => {
      const bytes = fixture(name);
      const truth = loudRegions(decodeAudio(bytes).samples);
      assert.equal(truth.length, 2, `the fixture should hold two sentences, energy finds ${JSON.stringify(truth)}`);
      const output = await model.run(bytes);
      const result = output.result as { segments: Segment[]; durationMs: number; speechMs: number; frames: Record<string, number> };
      assertSameSegments(result.segments, truth, 300, name);

      const frameCount = Math.ceil(result.durationMs / FRAME_MS);
      assert.equal(result.frames.count, frameCount);
      assert.equal(result.frames.frameMs, FRAME_MS);
      assert.ok(result.frames.maxProbability > 0.9 && result.frames.speechFrames > 0);
      assert.equal(result.speechMs, result.segments.reduce((ms, s) => ms + s.endMs - s.startMs, 0));
      assert.deepEqual(output.tensors.segments!.dims, [2, 2]);
      assert.deepEqual(Array.from(output.tensors.segments!.data as Float32Array), result.segments.flatMap((s) => [s.startMs, s.endMs]));
      assert.deepEqual(output.tensors.probabilities!.dims, [frameCount]);
      assert.ok(output.computeUs > 0);
    });
  }

  it('digital silence has no segments', async () => {
    const output = await model.run(encodeWavPcm16(new Float32Array(16000 * 3)));
    assert.deepEqual(output.result.segments, []);
    assert.equal(output.result.speechMs, 0);
    assert.deepEqual(output.tensors.segments!.dims, [0, 2]);
  });

  it('white noise at -26 dBFS has no segments', async () => {
    const { result } = await model.run(encodeWavPcm16(gaussianNoise(5, 0.05, 1)));
    assert.deepEqual(result.segments, []);
    assert.equal((result.frames as { speechFrames: number }).speechFrames, 0);
  });

  it('brown noise at -20 dBFS has no segments', async () => {
    const { result } = await model.run(encodeWavPcm16(brownNoise(5, 0.1, 2)));
    assert.deepEqual(result.segments, []);
    assert.equal((result.frames as { speechFrames: number }).speechFrames, 0);
  });

  it('the same speech as raw PCM16 gives the same segments', async () => {
    const wav = fixture('speech-en.wav');
    const raw = wav.subarray(44); // sox writes a bare 44-byte header
    assert.equal(new TextDecoder().decode(wav.subarray(36, 40)), 'data');
    assert.deepEqual(await segmentsOf(raw), await segmentsOf(wav));
  });

  it('the same speech as a 44.1 kHz stereo float WAV gives the same segments within two frames', async () => {
    const wav = fixture('speech-en.wav');
    const at44k = resample(decodeAudio(wav).samples, 16000, 44100);
    const stereo = new Float32Array(2 * at44k.length);
    at44k.forEach((x, i) => {
      stereo[2 * i] = x;
      stereo[2 * i + 1] = 0.8 * x;
    });
    const converted = buildWav({ format: 3, channels: 2, sampleRate: 44100, bitsPerSample: 32, extensible: true }, stereo);
    const output = await model.run(converted);
    assert.deepEqual(output.result.input, { container: 'wav', encoding: 'pcm_f32le', sampleRate: 44100, channels: 2 });
    assertSameSegments(output.result.segments as Segment[], await segmentsOf(wav), 2 * FRAME_MS, '44.1 kHz stereo');
  });

  const malformed: [string, Uint8Array][] = [
    ['a truncated RIFF header', new TextEncoder().encode('RIFF\x24\x00\x00\x00WA')],
    ['a WAV without a data chunk', riff([fmtChunk({ format: 1, channels: 1, sampleRate: 16000, bitsPerSample: 16 })])],
    ['an odd raw byte count', new Uint8Array(1025)],
    ['empty input', new Uint8Array(0)],
    ['format code 2 (MS ADPCM)', buildWav({ format: 2, channels: 1, sampleRate: 16000, bitsPerSample: 16 }, new Float32Array(512))],
    ['a data chunk with no samples', riff([fmtChunk({ format: 1, channels: 1, sampleRate: 16000, bitsPerSample: 16 }), chunk('data', new Uint8Array(0))])],
  ];
  for (const [name, bytes] of malformed) {
    it(`${name} is INVALID_ARGUMENT, and the model answers afterwards`, async () => {
      await assert.rejects(model.run(bytes), (err: unknown) => err instanceof InferError && err.code === 'INVALID_ARGUMENT');
      assert.equal((await segmentsOf(fixture('speech-en.wav'))).length, 2);
    });
  }
});

describe('speechSegments (get_speech_timestamps rules)', () => {
  const frames = (...runs: [number, number][]) => runs.flatMap(([p, n]) => new Array<number>(n).fill(p));
  const ms = (ranges: { startSample: number; endSample: number }[]) => ranges.map((r) => [r.startSample / 16, r.endSample / 16]);

  it('speech starts at the first frame >= 0.5 and ends where it fell below 0.35, padded by 30 ms', () => {
    const p = frames([0, 10], [0.9, 20], [0.1, 10]);
    assert.deepEqual(ms(speechSegments(p, p.length * 512)), [[320 - 30, 960 + 30]]);
  });

  it('dips shorter than 100 ms and dips that stay above 0.35 do not split speech', () => {
    const p = frames([0, 10], [0.9, 10], [0.1, 3], [0.9, 10], [0.4, 10], [0.9, 10], [0, 10]);
    assert.equal(speechSegments(p, p.length * 512).length, 1);
  });

  it('speech of 250 ms or less is dropped', () => {
    const short = frames([0, 10], [0.9, 7], [0, 10]); // 224 ms
    assert.deepEqual(speechSegments(short, short.length * 512), []);
  });

  it('segments closer than twice the pad split the gap between them instead of overlapping', () => {
    const p = frames([0, 10], [0.9, 10], [0.1, 2], [0.9, 10], [0, 10]);
    const options = { ...DEFAULT_SEGMENT_OPTIONS, minSilenceMs: 30, speechPadMs: 40 };
    assert.deepEqual(ms(speechSegments(p, p.length * 512, options)), [[320 - 40, 640 + 32], [640 + 32, 1024 + 40]]);
  });

  it('speech running to the end is closed at the last sample', () => {
    const p = frames([0, 10], [0.9, 20]);
    assert.deepEqual(ms(speechSegments(p, 30 * 512 - 100)), [[290, (30 * 512 - 100) / 16]]);
  });
});
