import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InferError } from '../../shared/errors.js';
import { checkVideoSource } from '../../edge/video/video-source.js';

const refused = (pattern: RegExp, code = 'INVALID_ARGUMENT') => (err: unknown) =>
  err instanceof InferError && err.code === code && pattern.test(err.message);

const allowlist = ['rtsp://camera.local/', 'file:///var/lib/splitinfer/clips/', '/dev/video0'];

describe('video sources', () => {
  test('with the default empty allowlist every source is refused, naming video.sources', () => {
    assert.throws(() => checkVideoSource('/dev/video0', []), refused(/video\.sources is empty/));
  });

  test('schemes other than rtsp, rtsps, file and /dev/video<N> are refused before the allowlist', () => {
    for (const source of ['http://camera.local/x.mp4', 'concat:a.mp4|b.mp4', '/etc/passwd', '/dev/video', 'pipe:0', 'file://server/share/x.mp4']) {
      assert.throws(() => checkVideoSource(source, ['http://camera.local/', ...allowlist]), refused(/is not one the device opens/), source);
    }
  });

  test('an entry ending in / allows what is under it; any other entry allows exactly itself', () => {
    assert.equal(checkVideoSource('rtsp://camera.local/stream1', allowlist).target, 'rtsp://camera.local/stream1');
    assert.equal(checkVideoSource('/dev/video0', allowlist).target, '/dev/video0');
    assert.throws(() => checkVideoSource('/dev/video01', allowlist), refused(/not in video\.sources/));
    assert.throws(() => checkVideoSource('rtsp://camera.local.evil.example/x', allowlist), refused(/not in video\.sources/));
    assert.throws(() => checkVideoSource('rtsps://camera.local/stream1', allowlist), refused(/not in video\.sources/));
  });

  test('a file:// source is normalised, so `..` cannot leave the allowed folder', () => {
    const clip = checkVideoSource('file:///var/lib/splitinfer/clips/./day1/../a.mp4', allowlist);
    assert.equal(clip.target, 'file:/var/lib/splitinfer/clips/a.mp4');
    assert.equal(clip.live, false);
    for (const escape of ['file:///var/lib/splitinfer/clips/../secret.mp4', 'file:///var/lib/splitinfer/clips/%2e%2e/secret.mp4', 'file:///var/lib/splitinfer/clips-old/a.mp4']) {
      assert.throws(() => checkVideoSource(escape, allowlist), refused(/not in video\.sources/), escape);
    }
  });

  test('RTSP credentials reach ffmpeg but not the allowlist match or messages', () => {
    const camera = checkVideoSource('rtsp://admin:hunter2@camera.local/stream1', allowlist);
    assert.equal(camera.target, 'rtsp://admin:hunter2@camera.local/stream1');
    assert.equal(camera.shown, 'rtsp://camera.local/stream1');
    assert.deepEqual(camera.inputArgs.slice(0, 2), ['-rtsp_transport', 'tcp']);
    assert.ok(camera.inputArgs.includes('-stimeout'), 'ffmpeg 4.1 names the socket timeout -stimeout');
    assert.equal(camera.live, true);
    assert.throws(() => checkVideoSource('rtsp://admin:hunter2@other.local/x', allowlist), (err: Error) => !err.message.includes('hunter2'));
    assert.throws(() => checkVideoSource('rtsp://admin:hunter2@[bad/x', allowlist), (err: Error) => !err.message.includes('hunter2'));
  });

  test('a V4L2 device is opened with -f v4l2 and is live', () => {
    const camera = checkVideoSource('/dev/video0', allowlist);
    assert.deepEqual(camera.inputArgs, ['-f', 'v4l2']);
    assert.equal(camera.live, true);
  });

  test('a malformed allowlist entry is a config error naming it', () => {
    assert.throws(() => checkVideoSource('/dev/video0', ['camera.local']), refused(/video\.sources entry 'camera\.local'/, 'FAILED_PRECONDITION'));
  });
});
