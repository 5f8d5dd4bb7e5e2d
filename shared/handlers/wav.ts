/**
 * Audio input for the audio handlers: RIFF/WAVE (PCM 8/16/24/32-bit integer,
 * IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE) or headerless 16 kHz mono PCM16 LE,
 * decoded to mono float samples at 16 kHz.
 */
import { invalidArgument } from '../errors.js';

export const AUDIO_SAMPLE_RATE = 16000;
export const DEFAULT_MAX_AUDIO_MS = 10 * 60 * 1000;

export interface DecodedAudio {
  /** Mono samples in [-1, 1] at AUDIO_SAMPLE_RATE. */
  samples: Float32Array;
  source: { container: 'wav' | 'raw'; encoding: string; sampleRate: number; channels: number };
}

export interface DecodeOptions {
  maxDurationMs?: number;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Bytes 2..15 of every KSDATAFORMAT_SUBTYPE_* GUID; bytes 0..1 carry the format code. */
const KSDATAFORMAT_SUFFIX = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
const CONVERT_HINT = 'convert it with e.g. `ffmpeg -i in -ar 16000 -ac 1 -c:a pcm_s16le out.wav`';

/** Containers we do not decode, recognised so they are not misread as raw PCM. */
const OTHER_CONTAINERS: [magic: string, name: string][] = [
  ['RIFX', 'big-endian RIFX'],
  ['RF64', 'RF64 (64-bit WAV)'],
  ['OggS', 'Ogg'],
  ['fLaC', 'FLAC'],
  ['ID3', 'MP3'],
  ['FORM', 'AIFF'],
];

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}

const isRiff = (bytes: Uint8Array) => bytes.length >= 4 && ascii(bytes, 0, 4) === 'RIFF';

function checkDuration(frames: number, sampleRate: number, options: DecodeOptions): void {
  if (frames === 0) throw invalidArgument(`audio input: the audio is empty (0 samples) — send at least one 32 ms frame (512 samples at 16 kHz)`);
  const maxMs = options.maxDurationMs ?? DEFAULT_MAX_AUDIO_MS;
  const durationMs = (frames / sampleRate) * 1000;
  if (durationMs > maxMs) {
    throw invalidArgument(`audio input: ${(durationMs / 1000).toFixed(1)} s of audio is longer than the ${maxMs / 1000} s limit — split it into shorter requests`);
  }
}

export function decodeAudio(bytes: Uint8Array, options: DecodeOptions = {}): DecodedAudio {
  if (bytes.length === 0) throw invalidArgument('audio input: the input is empty (0 bytes) — send a WAV file or raw 16 kHz mono PCM16 little-endian samples');
  if (isRiff(bytes)) return decodeWav(bytes, options);
  for (const [magic, name] of OTHER_CONTAINERS) {
    if (bytes.length >= magic.length && ascii(bytes, 0, magic.length) === magic) {
      throw invalidArgument(`audio input: this looks like ${name} audio, which is not supported — send WAV or raw 16 kHz mono PCM16; ${CONVERT_HINT}`);
    }
  }
  if (bytes.length % 2 !== 0) {
    throw invalidArgument(`audio input: ${bytes.length} bytes without a RIFF header were read as raw 16 kHz mono PCM16, which needs an even byte count — send whole 2-byte samples or a WAV file`);
  }
  const frames = bytes.length / 2;
  checkDuration(frames, AUDIO_SAMPLE_RATE, options);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const samples = new Float32Array(frames);
  for (let i = 0; i < frames; i++) samples[i] = view.getInt16(2 * i, true) / 32768;
  return { samples, source: { container: 'raw', encoding: 'pcm_s16le', sampleRate: AUDIO_SAMPLE_RATE, channels: 1 } };
}

interface WavFormat {
  code: number;
  channels: number;
  sampleRate: number;
  blockAlign: number;
  bitsPerSample: number;
}

function parseFormat(view: DataView, offset: number, size: number): WavFormat {
  if (size < 16) throw invalidArgument(`audio input: WAV 'fmt ' chunk is ${size} bytes, expected at least 16 — the header is truncated or corrupt`);
  const format: WavFormat = {
    code: view.getUint16(offset, true),
    channels: view.getUint16(offset + 2, true),
    sampleRate: view.getUint32(offset + 4, true),
    blockAlign: view.getUint16(offset + 12, true),
    bitsPerSample: view.getUint16(offset + 14, true),
  };
  if (format.code === WAVE_FORMAT_EXTENSIBLE) {
    if (size < 40) throw invalidArgument(`audio input: WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is ${size} bytes, expected 40 — the header is truncated or corrupt`);
    const guid = new Uint8Array(view.buffer, view.byteOffset + offset + 24, 16);
    if (!KSDATAFORMAT_SUFFIX.every((b, i) => guid[i + 2] === b)) {
      throw invalidArgument(`audio input: WAVE_FORMAT_EXTENSIBLE with a non-standard sub-format GUID is not supported — ${CONVERT_HINT}`);
    }
    format.code = view.getUint16(offset + 24, true);
  }
  return format;
}

function sampleReader(format: WavFormat): { encoding: string; read: (view: DataView, at: number) => number } {
  const { code, bitsPerSample: bits } = format;
  if (code === WAVE_FORMAT_PCM) {
    // 8-bit WAV is unsigned (offset 128); wider PCM is signed little-endian.
    if (bits === 8) return { encoding: 'pcm_u8', read: (v, at) => (v.getUint8(at) - 128) / 128 };
    if (bits === 16) return { encoding: 'pcm_s16le', read: (v, at) => v.getInt16(at, true) / 32768 };
    if (bits === 24) return { encoding: 'pcm_s24le', read: (v, at) => ((v.getInt8(at + 2) << 16) | v.getUint16(at, true)) / 8388608 };
    if (bits === 32) return { encoding: 'pcm_s32le', read: (v, at) => v.getInt32(at, true) / 2147483648 };
  } else if (code === WAVE_FORMAT_IEEE_FLOAT) {
    if (bits === 32) return { encoding: 'pcm_f32le', read: (v, at) => v.getFloat32(at, true) };
    if (bits === 64) return { encoding: 'pcm_f64le', read: (v, at) => v.getFloat64(at, true) };
  } else {
    throw invalidArgument(
      `audio input: WAV format code ${code} (0x${code.toString(16).padStart(4, '0')}) is not supported — expected 1 (PCM integer) or 3 (IEEE float); ${CONVERT_HINT}`,
    );
  }
  const expected = code === WAVE_FORMAT_PCM ? '8, 16, 24 or 32' : '32 or 64';
  throw invalidArgument(`audio input: WAV format ${code} with ${bits} bits per sample is not supported — expected ${expected}; ${CONVERT_HINT}`);
}

/** A WAV file's header: its format, checked to be one decodeAudio reads, and where its samples are. */
interface WavHeader {
  format: WavFormat;
  encoding: string;
  read: (view: DataView, at: number) => number;
  /** The samples present: a streamed or cut-off file declares more than arrived. */
  data: { offset: number; size: number };
}

/** Reads the RIFF chunk headers of a WAV file (not its samples); INVALID_ARGUMENT says what is wrong with them. */
function readWavHeader(bytes: Uint8Array): WavHeader {
  if (bytes.length < 12) throw invalidArgument(`audio input: RIFF header is truncated (${bytes.length} bytes, expected at least 12) — send the whole WAV file`);
  const formType = ascii(bytes, 8, 4);
  if (formType !== 'WAVE') throw invalidArgument(`audio input: RIFF file of type '${formType}' is not WAVE audio — ${CONVERT_HINT}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: WavFormat | undefined;
  let data: { offset: number; size: number } | undefined;
  const seen: string[] = [];
  let offset = 12;
  while (offset + 8 <= bytes.length && !(format && data)) {
    const id = ascii(bytes, offset, 4);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    seen.push(id.trim());
    if (id === 'fmt ') {
      if (body + Math.min(size, 40) > bytes.length) throw invalidArgument(`audio input: WAV 'fmt ' chunk runs past the end of the input (${bytes.length} bytes) — the header is truncated`);
      format = parseFormat(view, body, size);
    } else if (id === 'data') {
      // Streaming writers leave the size at 0 or 0xFFFFFFFF, and cut files end early: read what is there.
      const available = bytes.length - body;
      data = { offset: body, size: size === 0 || size > available ? available : size };
    }
    offset = body + size + (size & 1); // chunks are padded to an even size
  }
  if (!format) throw invalidArgument(`audio input: WAV has no 'fmt ' chunk (chunks found: ${seen.join(', ') || 'none'}) — the header is truncated or corrupt`);
  if (!data) throw invalidArgument(`audio input: WAV has no 'data' chunk (chunks found: ${seen.join(', ')}) — the file is truncated or holds no audio`);
  const reader = sampleReader(format);
  const { channels, sampleRate, blockAlign, bitsPerSample } = format;
  if (channels === 0) throw invalidArgument('audio input: WAV header says 0 channels — the header is corrupt');
  if (sampleRate < 1000 || sampleRate > 768000) throw invalidArgument(`audio input: WAV sample rate ${sampleRate} Hz is outside 1000..768000 Hz — the header is corrupt`);
  if (blockAlign !== channels * (bitsPerSample / 8)) {
    throw invalidArgument(`audio input: WAV block align ${blockAlign} does not match ${channels} channel(s) × ${bitsPerSample} bits — the header is corrupt`);
  }
  return { format, ...reader, data };
}

/**
 * Seconds of audio in an input decodeAudio takes, from the WAV chunk headers
 * alone (headerless input is 16 kHz mono PCM16), so it costs nothing like
 * decoding does; INVALID_ARGUMENT when a WAV header cannot be read.
 */
export function audioSeconds(bytes: Uint8Array): number {
  if (!isRiff(bytes)) return bytes.length / (AUDIO_SAMPLE_RATE * 2);
  const { format, data } = readWavHeader(bytes);
  return Math.floor(data.size / format.blockAlign) / format.sampleRate;
}

function decodeWav(bytes: Uint8Array, options: DecodeOptions): DecodedAudio {
  const { format, encoding, read, data } = readWavHeader(bytes);
  const { channels, sampleRate, blockAlign, bitsPerSample } = format;
  const bytesPerSample = bitsPerSample / 8;
  const frames = Math.floor(data.size / blockAlign);
  checkDuration(frames, sampleRate, options);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const mono = new Float32Array(frames);
  for (let i = 0, at = data.offset; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++, at += bytesPerSample) sum += read(view, at);
    mono[i] = sum / channels;
  }
  const samples = resample(mono, sampleRate, AUDIO_SAMPLE_RATE);
  if (samples.length === 0) throw invalidArgument(`audio input: ${frames} sample(s) at ${sampleRate} Hz is shorter than one 16 kHz sample — send at least 32 ms of audio`);
  return {
    samples,
    source: { container: 'wav', encoding, sampleRate, channels },
  };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Zero crossings of the sinc kept on each side, at the lower of the two rates. */
const SINC_ZERO_CROSSINGS = 10;
/** Cutoff as a fraction of the lower Nyquist frequency: 6.8 kHz going to 16 kHz, which measures flat to ~6 kHz and -70 dB from 9 kHz. */
const SINC_ROLLOFF = 0.85;
/** Fractional delays tabulated; beyond this the delay is rounded to 1/1024 of a sample. */
const MAX_PHASES = 1024;

/**
 * Band-limited resampling with a Blackman-windowed sinc, tabulated per
 * fractional delay (polyphase). Plain linear interpolation would fold
 * everything above 8 kHz in a 44.1/48 kHz recording (hiss, sibilants) back
 * into the band the VAD listens to; the low-pass at the lower rate's Nyquist
 * removes it first. Each phase is normalised to unit DC gain.
 */
export function resample(input: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (fromRate === toRate) return input;
  const g = gcd(fromRate, toRate);
  const up = toRate / g;
  const down = fromRate / g;
  const scale = Math.min(1, toRate / fromRate);
  const cutoff = 0.5 * scale * SINC_ROLLOFF; // cycles per input sample
  const halfWidth = SINC_ZERO_CROSSINGS / scale; // input samples
  const taps = 2 * Math.ceil(halfWidth);
  const first = -Math.ceil(halfWidth) + 1;
  const phases = Math.min(up, MAX_PHASES);
  const table = new Float32Array(phases * taps);
  for (let p = 0; p < phases; p++) {
    const frac = p / phases;
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      const x = first + j - frac;
      const w = Math.abs(x) >= halfWidth ? 0 : 0.42 + 0.5 * Math.cos((Math.PI * x) / halfWidth) + 0.08 * Math.cos((2 * Math.PI * x) / halfWidth);
      const arg = 2 * cutoff * x;
      const h = w * (arg === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg));
      table[p * taps + j] = h;
      sum += h;
    }
    for (let j = 0; j < taps; j++) table[p * taps + j]! /= sum;
  }
  const outLength = Math.floor((input.length * up) / down);
  const output = new Float32Array(outLength);
  // Input position of output n is n·down/up = base + rem/up, stepped in integers (n·down overflows int32 math).
  const whole = Math.floor(down / up);
  const part = down % up;
  for (let n = 0, base = 0, rem = 0; n < outLength; n++, base += whole, rem += part) {
    if (rem >= up) {
      rem -= up;
      base++;
    }
    const row = Math.floor((rem * phases) / up) * taps;
    const start = base + first;
    let acc = 0;
    for (let j = Math.max(0, -start), end = Math.min(taps, input.length - start); j < end; j++) acc += input[start + j]! * table[row + j]!;
    output[n] = acc;
  }
  return output;
}

/** A 16-bit PCM mono WAV file of the given samples (clipped to [-1, 1]). */
export function encodeWavPcm16(samples: Float32Array, sampleRate = AUDIO_SAMPLE_RATE): Uint8Array {
  const bytes = new Uint8Array(44 + 2 * samples.length);
  const view = new DataView(bytes.buffer);
  const text = (at: number, s: string) => [...s].forEach((ch, i) => view.setUint8(at + i, ch.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, 36 + 2 * samples.length, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, WAVE_FORMAT_PCM, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, 'data');
  view.setUint32(40, 2 * samples.length, true);
  for (let i = 0; i < samples.length; i++) view.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, samples[i]!)) * 32767), true);
  return bytes;
}
