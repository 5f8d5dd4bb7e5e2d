import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InferError } from '../../shared/errors.js';
import { audioSeconds, decodeAudio, encodeWavPcm16, resample } from '../../shared/handlers/wav.js';
import { buildWav, chunk, encodeSamples, fmtChunk, riff, type WavSpec } from '../helpers/build-wav.js';

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `${label}: sample ${i} is ${actual[i]}, expected ${expected[i]} ± ${tolerance}`);
  }
}

function tone(frequencyHz: number, sampleRate: number, seconds: number, amplitude = 0.5): Float32Array {
  return Float32Array.from({ length: Math.round(sampleRate * seconds) }, (_, n) => amplitude * Math.sin((2 * Math.PI * frequencyHz * n) / sampleRate));
}

function rms(x: Float32Array, from = 0, to = x.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += x[i]! ** 2;
  return Math.sqrt(sum / (to - from));
}

const mono16k = (format: number, bitsPerSample: number, extensible = false): WavSpec => ({ format, channels: 1, sampleRate: 16000, bitsPerSample, extensible });
const SAMPLES = [0, 0.5, -0.5, 0.25, -1, 0.999];

describe('wav decoding', () => {
  it('bytes without a RIFF header are raw 16 kHz mono PCM16 little-endian', () => {
    const audio = decodeAudio(Uint8Array.of(0x00, 0x40, 0x00, 0xc0, 0xff, 0x7f));
    assertClose(audio.samples, [0.5, -0.5, 32767 / 32768], 1e-9, 'raw');
    assert.deepEqual(audio.source, { container: 'raw', encoding: 'pcm_s16le', sampleRate: 16000, channels: 1 });
  });

  const widths: [string, WavSpec, number][] = [
    ['8-bit unsigned PCM', mono16k(1, 8), 1 / 127],
    ['16-bit PCM', mono16k(1, 16), 2 / 32768],
    ['24-bit PCM', mono16k(1, 24), 1e-6],
    ['32-bit PCM', mono16k(1, 32), 1e-6],
    ['32-bit float', mono16k(3, 32), 1e-7],
    ['64-bit float', mono16k(3, 64), 1e-7],
    ['WAVE_FORMAT_EXTENSIBLE 24-bit PCM', mono16k(1, 24, true), 1e-6],
    ['WAVE_FORMAT_EXTENSIBLE float', mono16k(3, 32, true), 1e-7],
  ];
  for (const [name, spec, tolerance] of widths) {
    it(`${name} decodes to the samples it holds`, () => {
      assertClose(decodeAudio(buildWav(spec, SAMPLES)).samples, SAMPLES, tolerance, name);
    });
  }

  it('channels are averaged to mono', () => {
    const spec: WavSpec = { format: 1, channels: 3, sampleRate: 16000, bitsPerSample: 16 };
    const audio = decodeAudio(buildWav(spec, [0.3, 0.3, 0.3, 0.6, 0, -0.3]));
    assertClose(audio.samples, [0.3, 0.1], 1e-4, 'mono');
    assert.equal(audio.source.channels, 3);
  });

  it('unknown chunks are skipped, including odd-sized ones with their pad byte', () => {
    const spec = mono16k(1, 16);
    const bytes = riff([chunk('LIST', Uint8Array.of(1, 2, 3)), fmtChunk(spec), chunk('fact', Uint8Array.of(9, 9, 9, 9, 9)), chunk('data', encodeSamples(spec, SAMPLES))]);
    assertClose(decodeAudio(bytes).samples, SAMPLES, 2 / 32768, 'samples');
  });

  it('a data size past the end (streamed or cut-off WAV) reads the whole frames that are there', () => {
    const spec = mono16k(1, 16);
    const body = encodeSamples(spec, SAMPLES);
    const streamed = riff([fmtChunk(spec), chunk('data', body, 0xffffffff)]);
    assertClose(decodeAudio(streamed).samples, SAMPLES, 2 / 32768, 'streamed');
    const cut = buildWav(spec, SAMPLES).subarray(0, 44 + 5);
    assertClose(decodeAudio(cut).samples, SAMPLES.slice(0, 2), 2 / 32768, 'cut');
  });

  it('encodeWavPcm16 writes a WAV that decodes back to its samples', () => {
    assertClose(decodeAudio(encodeWavPcm16(Float32Array.from(SAMPLES))).samples, SAMPLES, 2 / 32768, 'round trip');
  });
});

describe('audio duration from headers', () => {
  it('a WAV lasts its data chunk over the frame size and rate; headerless input is 16 kHz mono PCM16', () => {
    const stereo8k: WavSpec = { format: 1, channels: 2, sampleRate: 8000, bitsPerSample: 16 };
    assert.equal(audioSeconds(buildWav(stereo8k, new Float32Array(2 * 8000 * 1.5))), 1.5);
    assert.equal(audioSeconds(buildWav({ format: 3, channels: 1, sampleRate: 48000, bitsPerSample: 32 }, new Float32Array(12000))), 0.25);
    assert.equal(audioSeconds(new Uint8Array(32_000)), 1);
  });

  it('a streamed or cut-off WAV lasts as long as the audio that arrived, as decodeAudio reads it', () => {
    const spec = mono16k(1, 16);
    const body = encodeSamples(spec, new Float32Array(1600));
    for (const declared of [0xffffffff, 0, 16000 * 2 * 60]) {
      const streamed = riff([fmtChunk(spec), chunk('data', body, declared)]);
      assert.equal(audioSeconds(streamed), 0.1, `data size ${declared}`);
      assert.equal(decodeAudio(streamed).samples.length / 16000, 0.1);
    }
    assert.equal(audioSeconds(buildWav(spec, new Float32Array(1600)).subarray(0, 44 + 321)), 160 / 16000, 'whole frames only');
  });

  it('a WAV header cut short is refused with the reason decodeAudio gives', () => {
    const wav = buildWav(mono16k(1, 16), new Float32Array(16000));
    const cut = wav.subarray(0, 30);
    assert.throws(() => audioSeconds(cut), { code: 'INVALID_ARGUMENT', message: /'fmt ' chunk runs past the end of the input \(30 bytes\)/ });
    assert.throws(() => decodeAudio(cut), { message: /'fmt ' chunk runs past the end of the input \(30 bytes\)/ });
    assert.throws(() => audioSeconds(riff([fmtChunk(mono16k(7, 8))])), { code: 'INVALID_ARGUMENT', message: /no 'data' chunk/ });
  });
});

describe('resampling to 16 kHz', () => {
  it('a 1 kHz tone at 48 kHz is the same 1 kHz tone at 16 kHz', () => {
    const out = decodeAudio(buildWav({ format: 3, channels: 1, sampleRate: 48000, bitsPerSample: 32 }, tone(1000, 48000, 1))).samples;
    assert.equal(out.length, 16000);
    const expected = tone(1000, 16000, 1);
    assertClose(out.subarray(100, 15900), expected.subarray(100, 15900), 0.005, 'tone');
  });

  it('from 44.1 kHz a 1 kHz tone passes and a 12 kHz tone (above the 8 kHz Nyquist) is filtered out, not aliased', () => {
    const pass = resample(tone(1000, 44100, 1), 44100, 16000);
    const stop = resample(tone(12000, 44100, 1), 44100, 16000);
    assert.equal(pass.length, 16000);
    assert.ok(Math.abs(rms(pass, 100, 15900) - 0.5 / Math.SQRT2) < 0.005, `pass-band RMS ${rms(pass, 100, 15900)}`);
    assert.ok(rms(stop, 100, 15900) < 0.5 / Math.SQRT2 / 1000, `12 kHz leaks through at RMS ${rms(stop, 100, 15900)} (want below -60 dB)`);
  });

  it('8 kHz is upsampled to twice the samples with the tone intact', () => {
    const out = resample(tone(500, 8000, 0.5), 8000, 16000);
    assert.equal(out.length, 8000);
    assertClose(out.subarray(100, 7900), tone(500, 16000, 0.5).subarray(100, 7900), 0.005, 'tone');
  });
});

describe('rejected audio input', () => {
  const spec = mono16k(1, 16);
  const fmtBody = fmtChunk(spec).subarray(8);
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty input', new Uint8Array(0), /input is empty/],
    ['odd raw byte count', Uint8Array.of(1, 2, 3), /3 bytes .* even byte count/],
    ['truncated RIFF header', new TextEncoder().encode('RIFF\x10\x00'), /RIFF header is truncated/],
    ['RIFF that is not WAVE', riff([], 'AVI '), /'AVI ' is not WAVE/],
    ['no fmt chunk', riff([chunk('data', encodeSamples(spec, SAMPLES))]), /no 'fmt ' chunk \(chunks found: data\)/],
    ['fmt chunk shorter than 16 bytes', riff([chunk('fmt ', fmtBody.subarray(0, 10)), chunk('data', new Uint8Array(4))]), /'fmt ' chunk is 10 bytes/],
    ['fmt chunk cut off by the end of the file', riff([fmtChunk(spec)]).subarray(0, 30), /runs past the end/],
    ['no data chunk', riff([fmtChunk(spec), chunk('LIST', new Uint8Array(4))]), /no 'data' chunk \(chunks found: fmt, LIST\)/],
    ['MS ADPCM (format code 2)', buildWav({ ...spec, format: 2 }, SAMPLES), /format code 2 \(0x0002\) is not supported/],
    ['MP3 in WAVE_FORMAT_EXTENSIBLE', buildWav({ ...spec, format: 0x55, extensible: true }, SAMPLES), /format code 85 \(0x0055\)/],
    ['12-bit PCM', riff([chunk('fmt ', patchBits(fmtBody, 12)), chunk('data', new Uint8Array(4))]), /format 1 with 12 bits per sample/],
    ['16-bit float', buildWav({ ...spec, format: 3 }, SAMPLES), /format 3 with 16 bits per sample/],
    ['a data chunk with no samples', riff([fmtChunk(spec), chunk('data', new Uint8Array(0))]), /audio is empty/],
    ['one 44.1 kHz sample (no 16 kHz sample)', buildWav({ ...spec, sampleRate: 44100 }, [0.5]), /1 sample\(s\) at 44100 Hz is shorter than one 16 kHz sample/],
    ['Ogg bytes', new TextEncoder().encode('OggS\x00\x02'), /looks like Ogg audio/],
  ];
  for (const [name, bytes, message] of cases) {
    it(`${name} is INVALID_ARGUMENT saying what is wrong`, () => {
      assert.throws(() => decodeAudio(bytes), (err: unknown) => {
        assert.ok(err instanceof InferError);
        assert.equal(err.code, 'INVALID_ARGUMENT');
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('audio longer than the limit is INVALID_ARGUMENT, for WAV and raw input', () => {
    const wav = buildWav(spec, new Float32Array(24000));
    assert.throws(() => decodeAudio(wav, { maxDurationMs: 1000 }), /1\.5 s of audio is longer than the 1 s limit/);
    assert.throws(() => decodeAudio(new Uint8Array(48000), { maxDurationMs: 1000 }), /1\.5 s of audio is longer than the 1 s limit/);
    assert.equal(decodeAudio(wav, { maxDurationMs: 1500 }).samples.length, 24000);
  });
});

function patchBits(fmtBody: Uint8Array, bits: number): Uint8Array {
  const copy = fmtBody.slice();
  new DataView(copy.buffer).setUint16(14, bits, true);
  return copy;
}
