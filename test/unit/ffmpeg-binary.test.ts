import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { InferError } from '../../shared/errors.js';
import { findFfmpeg } from '../../edge/video/ffmpeg-binary.js';

const dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-ffmpeg-path-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A folder holding an executable named ffmpeg (a shell script: only its presence matters here). */
function folderWithFfmpeg(name: string): string {
  const bin = path.join(dir, name);
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'ffmpeg'), '#!/bin/sh\nexit 0\n');
  chmodSync(path.join(bin, 'ffmpeg'), 0o755);
  return bin;
}

describe('which ffmpeg decodes video', () => {
  const emptyFolder = mkdtempSync(path.join(dir, 'empty-'));

  test('a configured path that is not there is an error naming video.ffmpegPath, with no fallback', async () => {
    await assert.rejects(
      findFfmpeg({ configuredPath: path.join(dir, 'missing', 'ffmpeg') }),
      (err: unknown) => err instanceof InferError && err.code === 'FAILED_PRECONDITION' && /video\.ffmpegPath .*missing/.test(err.message),
    );
  });

  test('a configured path that exists is used as given', async () => {
    const bin = folderWithFfmpeg('configured');
    assert.deepEqual(await findFfmpeg({ configuredPath: path.join(bin, 'ffmpeg'), searchPath: emptyFolder }), { path: path.join(bin, 'ffmpeg'), origin: 'config' });
  });

  test('without a configured path, ffmpeg on PATH comes before the npm binary', async () => {
    const bin = folderWithFfmpeg('system');
    const found = await findFfmpeg({ searchPath: [emptyFolder, bin].join(path.delimiter) });
    assert.deepEqual(found, { path: path.join(bin, 'ffmpeg'), origin: 'system' });
  });

  test('with none on PATH, the npm package binary for this platform is used', async () => {
    const found = await findFfmpeg({ searchPath: emptyFolder });
    assert.equal(found.origin, 'npm');
    assert.match(found.path, new RegExp(`@ffmpeg-installer/${process.platform}-${process.arch}/ffmpeg$`));
  });

  test('with none anywhere, the error names all three places', async () => {
    await assert.rejects(findFfmpeg({ searchPath: emptyFolder, platform: 'linux-riscv64' }), (err: unknown) => {
      assert.ok(err instanceof InferError);
      assert.match(err.message, /video\.ffmpegPath is not set/);
      assert.match(err.message, /on PATH/);
      assert.match(err.message, /@ffmpeg-installer\/linux-riscv64/);
      return true;
    });
  });

  test('the lookup is remembered', async () => {
    assert.equal(findFfmpeg({ searchPath: emptyFolder }), findFfmpeg({ searchPath: emptyFolder }));
  });
});
