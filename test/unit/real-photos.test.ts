/**
 * The real photo set (models/samples/photos): every file is listed in its
 * README with where it came from, every photo is a small JPEG, and the
 * split into a calibration part and a held-out part is fixed by the file
 * names, disjoint, and what the INT8 build and the encoder checks use.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { calibrationImages, heldOutImages, isHeldOutPhoto, isRealPhoto, photoDir, realPhotos } from '../../models/image-encoder/photo-like-images.js';

const files = readdirSync(photoDir).filter((name) => name !== 'README.md');
const readme = readFileSync(path.join(photoDir, 'README.md'), 'utf8');
/** The README table's rows: file name → the row's cells. */
const rows = new Map(
  readme
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()))
    .map((cells) => [cells[0]!.replaceAll('`', ''), cells]),
);

describe('real photo set', () => {
  test('holds at least 40 photos, each listed in the README with package, path, licence and its part of the split', () => {
    assert.ok(files.length >= 40, `${files.length} photos`);
    assert.deepEqual([...rows.keys()].sort(), [...files].sort(), 'README rows and files differ');
    for (const [name, [, shows, pkg, pathInPackage, licence, , part]] of rows) {
      assert.ok(shows && pkg && pathInPackage, `${name}: what it shows, package and path`);
      assert.match(licence!, /^(MIT|BSD-3-Clause|Apache-2.0|CC0-1.0)$/, `${name}: licence`);
      assert.equal(part, isHeldOutPhoto(name) ? 'held out' : 'calibration', `${name}: README part`);
    }
  });

  test('every photo is a JPEG of at most 640 px on its long side, without metadata', async () => {
    for (const name of files) {
      const meta = await sharp(path.join(photoDir, name)).metadata();
      assert.equal(meta.format, 'jpeg', name);
      assert.ok(Math.max(meta.width!, meta.height!) <= 640, `${name}: ${meta.width}×${meta.height}`);
      assert.equal(meta.exif, undefined, `${name} carries EXIF`);
    }
  });

  test('the split depends on the file name only, and its parts are disjoint and cover the set', () => {
    const heldOut = realPhotos('held-out').map((p) => p.name);
    const calibration = realPhotos('calibration').map((p) => p.name);
    assert.deepEqual(realPhotos('held-out').map((p) => p.name), heldOut, 'same split on a second call');
    assert.equal(heldOut.filter((name) => calibration.includes(name)).length, 0);
    assert.deepEqual([...heldOut, ...calibration].map((name) => path.basename(name)).sort(), [...files].sort());
    assert.ok(heldOut.length >= 20 && calibration.length >= 10, `${heldOut.length} held out, ${calibration.length} calibrate`);
    assert.equal(isHeldOutPhoto('samples/photos/exif-car-road.jpg'), isHeldOutPhoto('exif-car-road.jpg'), 'the folder does not matter');
  });

  test('the encoder checks use the held-out photos and the INT8 calibration the others', async () => {
    const held = (await heldOutImages()).filter(isRealPhoto).map((p) => p.name);
    const calibrating = (await calibrationImages()).filter(isRealPhoto).map((p) => p.name);
    assert.deepEqual(held, realPhotos('held-out').map((p) => p.name));
    assert.deepEqual(calibrating, realPhotos('calibration').map((p) => p.name));
  });
});
