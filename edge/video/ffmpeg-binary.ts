/**
 * Which ffmpeg executable decodes video: the path the config names, else the
 * system's `ffmpeg` on PATH (distribution builds carry the device's hardware
 * decoders and security updates), else the static build the npm package
 * `@ffmpeg-installer/<platform>-<arch>` ships (ffmpeg 4.1, GPLv3, run as a
 * separate executable, never linked).
 */
import { access, constants } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { InferError } from '../../shared/errors.js';

export type FfmpegOrigin = 'config' | 'system' | 'npm';

export interface FfmpegBinary {
  path: string;
  origin: FfmpegOrigin;
}

export interface FfmpegLookup {
  /** `video.ffmpegPath` from the config; when given it must exist, with no fallback. */
  configuredPath?: string;
  /** The PATH to search; the process's own by default. */
  searchPath?: string;
  /** `<platform>-<arch>` of the npm binary package; this machine's by default. */
  platform?: string;
}

const requireFromHere = createRequire(import.meta.url);
const found = new Map<string, Promise<FfmpegBinary>>();

const isExecutable = (file: string) => access(file, constants.X_OK).then(() => true, () => false);

async function onPath(searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'ffmpeg');
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The binary of the per-platform npm package, resolved through node's module lookup (the umbrella package's index throws a string on platforms it lacks). */
async function fromNpm(platform: string): Promise<string | undefined> {
  const packageName = `@ffmpeg-installer/${platform}`;
  let packageJson: string;
  try {
    packageJson = requireFromHere.resolve(`${packageName}/package.json`);
  } catch {
    return undefined;
  }
  const binary = path.join(path.dirname(packageJson), platform.startsWith('win32') ? 'ffmpeg.exe' : 'ffmpeg');
  return (await isExecutable(binary)) ? binary : undefined;
}

async function lookUp(configuredPath: string | undefined, searchPath: string, platform: string): Promise<FfmpegBinary> {
  if (configuredPath !== undefined) {
    if (await isExecutable(configuredPath)) return { path: configuredPath, origin: 'config' };
    throw new InferError(
      'FAILED_PRECONDITION',
      `video.ffmpegPath '${configuredPath}' is not an executable file — fix the path, or remove the setting to use ffmpeg from PATH or the npm package`,
    );
  }
  const system = await onPath(searchPath);
  if (system) return { path: system, origin: 'system' };
  const npm = await fromNpm(platform);
  if (npm) return { path: npm, origin: 'npm' };
  throw new InferError(
    'FAILED_PRECONDITION',
    `no ffmpeg to decode video: video.ffmpegPath is not set, no executable 'ffmpeg' on PATH (${searchPath || 'empty'}), ` +
      `and the npm package @ffmpeg-installer/${platform} is not installed — install ffmpeg (e.g. apt install ffmpeg) or set video.ffmpegPath`,
  );
}

/** The ffmpeg to run, looked up once per set of places and remembered (a failed lookup is retried next time). */
export function findFfmpeg(lookup: FfmpegLookup = {}): Promise<FfmpegBinary> {
  const searchPath = lookup.searchPath ?? process.env.PATH ?? '';
  const platform = lookup.platform ?? `${process.platform}-${process.arch}`;
  const key = JSON.stringify([lookup.configuredPath, searchPath, platform]);
  let binary = found.get(key);
  if (!binary) {
    binary = lookUp(lookup.configuredPath, searchPath, platform);
    binary.catch(() => found.delete(key));
    found.set(key, binary);
  }
  return binary;
}
