/**
 * Video the device reads itself (`inputs.video = { source, seconds }`): a
 * camera stream, a clip on disk or a V4L2 device. A request names what to
 * open, so only what the operator allowlisted in `video.sources` may be
 * opened; the default list is empty and refuses every source.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InferError } from '../../shared/errors.js';

/** How long an RTSP socket may wait on a camera before ffmpeg gives up, so an unreachable one fails within seconds. */
const rtspSocketTimeoutUs = 5_000_000;

const devicePattern = /^\/dev\/video\d+$/;
const supported = 'rtsp://host/path, rtsps://host/path, file:///absolute/path or /dev/video<N>';

interface ParsedSource {
  /** What ffmpeg opens (credentials kept). */
  target: string;
  /** What the allowlist is matched against and messages show: normalised, credentials removed. */
  shown: string;
  kind: 'rtsp' | 'file' | 'device';
}

function parseSource(source: string): ParsedSource | undefined {
  if (devicePattern.test(source)) return { target: source, shown: source, kind: 'device' };
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    return undefined;
  }
  if (url.protocol === 'file:') {
    if (url.host !== '' && url.host !== 'localhost') return undefined;
    // The URL parser already removed `.` and `..` segments (also %2e-encoded ones); resolve once more for any that decoding revealed.
    let file: string;
    try {
      file = path.resolve(fileURLToPath(url));
    } catch {
      return undefined;
    }
    // A folder entry keeps its trailing `/`, which path.resolve drops.
    if (url.pathname.endsWith('/') && file !== '/') file += '/';
    // `file:` in front keeps ffmpeg from reading a protocol name into a path with a colon in it.
    return { target: `file:${file}`, shown: pathToFileURL(file).href, kind: 'file' };
  }
  if ((url.protocol === 'rtsp:' || url.protocol === 'rtsps:') && url.hostname) {
    const bare = new URL(url.href);
    bare.username = '';
    bare.password = '';
    return { target: url.href, shown: bare.href, kind: 'rtsp' };
  }
  return undefined;
}

/** An entry ending in `/` allows everything under it; any other entry allows exactly itself (`/dev/video1` does not allow `/dev/video10`). */
function allows(entry: ParsedSource, source: ParsedSource): boolean {
  if (entry.kind !== source.kind) return false;
  return entry.shown.endsWith('/') ? source.shown.startsWith(entry.shown) : source.shown === entry.shown;
}

/** Credentials cut out of a source that did not parse, for error messages. */
const redact = (source: string) => source.replace(/\/\/[^/@]*@/, '//…@');

export interface CheckedSource {
  /** What ffmpeg opens. */
  target: string;
  /** The source without credentials, for messages and logs. */
  shown: string;
  /** Keeps producing whether it is read or not (a camera), unlike a file. */
  live: boolean;
  /** ffmpeg's options for this input, placed before its `-i`. */
  inputArgs: string[];
}

/**
 * The source if `video.sources` allows it, else INVALID_ARGUMENT saying why.
 * Schemes are checked before the allowlist, so a list entry can never let
 * another protocol (http, concat, pipe) through.
 */
export function checkVideoSource(source: string, allowlist: readonly string[]): CheckedSource {
  const parsed = parseSource(source);
  if (!parsed) {
    throw new InferError('INVALID_ARGUMENT', `video source '${redact(source)}' is not one the device opens — use ${supported}`);
  }
  if (allowlist.length === 0) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `video source ${parsed.shown} refused: this device allows no video sources (video.sources is empty) — send the video bytes, or ask the operator to add the source to video.sources`,
    );
  }
  const entries = allowlist.map((entry) => {
    const parsedEntry = parseSource(entry);
    if (!parsedEntry) throw new InferError('FAILED_PRECONDITION', `video.sources entry '${redact(entry)}' is not ${supported}; fix the agent config`);
    return parsedEntry;
  });
  if (!entries.some((entry) => allows(entry, parsed))) {
    throw new InferError(
      'INVALID_ARGUMENT',
      `video source ${parsed.shown} is not in video.sources (allowed: ${entries.map((e) => e.shown).join(', ')}) — use an allowed source or ask the operator to add it`,
    );
  }
  return { target: parsed.target, shown: parsed.shown, ...inputOptions(parsed.kind) };
}

function inputOptions(kind: ParsedSource['kind']): { live: boolean; inputArgs: string[] } {
  switch (kind) {
    case 'rtsp':
      // TCP: no lost packets behind NAT or on a lossy link; `-stimeout` (µs) is ffmpeg 4.1's name for the socket timeout (later `-timeout`).
      return { live: true, inputArgs: ['-rtsp_transport', 'tcp', '-stimeout', String(rtspSocketTimeoutUs)] };
    case 'device':
      return { live: true, inputArgs: ['-f', 'v4l2'] };
    case 'file':
      return { live: false, inputArgs: [] };
  }
}
