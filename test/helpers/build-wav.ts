/** Hand-built RIFF/WAVE files for the audio tests, written field by field from the spec. */

export interface WavSpec {
  /** 1 PCM integer, 3 IEEE float, or any other code to test rejection. */
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Write WAVE_FORMAT_EXTENSIBLE (0xFFFE) with `format` as the sub-format GUID's code. */
  extensible?: boolean;
}

const encoder = new TextEncoder();

/** One chunk: id, little-endian size, body, and the pad byte odd sizes need. */
export function chunk(id: string, body: Uint8Array, declaredSize = body.length): Uint8Array {
  const out = new Uint8Array(8 + body.length + (body.length & 1));
  out.set(encoder.encode(id), 0);
  new DataView(out.buffer).setUint32(4, declaredSize, true);
  out.set(body, 8);
  return out;
}

export function riff(chunks: Uint8Array[], formType = 'WAVE'): Uint8Array {
  const size = 4 + chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(8 + size);
  out.set(encoder.encode('RIFF'), 0);
  new DataView(out.buffer).setUint32(4, size, true);
  out.set(encoder.encode(formType), 8);
  let offset = 12;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

export function fmtChunk(spec: WavSpec): Uint8Array {
  const body = new Uint8Array(spec.extensible ? 40 : 16);
  const view = new DataView(body.buffer);
  const blockAlign = (spec.channels * spec.bitsPerSample) / 8;
  view.setUint16(0, spec.extensible ? 0xfffe : spec.format, true);
  view.setUint16(2, spec.channels, true);
  view.setUint32(4, spec.sampleRate, true);
  view.setUint32(8, spec.sampleRate * blockAlign, true);
  view.setUint16(12, blockAlign, true);
  view.setUint16(14, spec.bitsPerSample, true);
  if (spec.extensible) {
    view.setUint16(16, 22, true);
    view.setUint16(18, spec.bitsPerSample, true);
    view.setUint32(20, spec.channels === 2 ? 0x3 : 0x4, true);
    view.setUint16(24, spec.format, true);
    body.set([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71], 26);
  }
  return chunk('fmt ', body);
}

/** The data chunk body for interleaved samples in [-1, 1]. */
export function encodeSamples(spec: WavSpec, interleaved: ArrayLike<number>): Uint8Array {
  const width = spec.bitsPerSample / 8;
  const body = new Uint8Array(interleaved.length * width);
  const view = new DataView(body.buffer);
  for (let i = 0; i < interleaved.length; i++) {
    const x = interleaved[i]!;
    const at = i * width;
    if (spec.format === 3 && width === 4) view.setFloat32(at, x, true);
    else if (spec.format === 3 && width === 8) view.setFloat64(at, x, true);
    else if (width === 1) view.setUint8(at, Math.round(x * 127) + 128);
    else if (width === 2) view.setInt16(at, Math.round(x * 32767), true);
    else if (width === 3) {
      const v = Math.round(x * 8388607);
      view.setUint16(at, v & 0xffff, true);
      view.setInt8(at + 2, v >> 16);
    } else view.setInt32(at, Math.round(x * 2147483647), true);
  }
  return body;
}

export function buildWav(spec: WavSpec, interleaved: ArrayLike<number>): Uint8Array {
  return riff([fmtChunk(spec), chunk('data', encodeSamples(spec, interleaved))]);
}

