/**
 * Consecutive video frames of one scene, made from one still: what a camera
 * gives between two cuts (a small pan and zoom, fresh sensor noise, JPEG
 * again). The boundary threshold is measured on them (boundary-threshold.ts)
 * and the tests use them as a run with no cut.
 */
import sharp from 'sharp';

/** `count` JPEG frames of the scene in `still`: each a 94–99 % crop at a random offset, scaled back, with noise of sigma 3–9. */
export async function sceneFrames(still: Uint8Array, count: number, random: () => number): Promise<Uint8Array[]> {
  const { data, info } = await sharp(still).raw().toBuffer({ resolveWithObject: true });
  const frames: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const zoom = 0.94 + random() * 0.05;
    const width = Math.round(info.width * zoom);
    const height = Math.round(info.height * zoom);
    const left = Math.floor(random() * (info.width - width));
    const top = Math.floor(random() * (info.height - height));
    const moved = await sharp(data, { raw: info }).extract({ left, top, width, height }).resize(info.width, info.height).raw().toBuffer();
    const sigma = 3 + random() * 6;
    for (let p = 0; p < moved.length; p++) moved[p] = Math.max(0, Math.min(255, Math.round(moved[p]! + (random() + random() + random() - 1.5) * 2 * sigma)));
    frames.push(new Uint8Array(await sharp(moved, { raw: info }).jpeg({ quality: 75 + Math.floor(random() * 20) }).toBuffer()));
  }
  return frames;
}
