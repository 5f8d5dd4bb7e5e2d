/**
 * image-encoder: the images carry no content labels, so the candidate is
 * scored by agreement with the reference: the share of images on which both
 * give the same top label (the target for an INT8 variant against
 * its float network is ≥ 99%), split by where the images come from. The
 * default set is what the INT8 build checks, none of it calibrated on: the
 * held-out real photos (models/samples/photos) and 64 photo-like scenes of a
 * seed calibration does not use; another folder of JPEG/PNG/WebP images can
 * be given instead.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { encoderAgreement } from '../image-encoder/agreement.js';
import { heldOutDescription, heldOutImages, isRealPhoto, photoDir, PHOTO_LIKE_HELD_OUT, realPhotos, type NamedImage } from '../image-encoder/photo-like-images.js';
import { registerEvaluator, requireData, type Evaluation, type GroupQuality } from './evaluator.js';
import { ModelToolError } from './onnx-model.js';

const dataDescription = 'a folder of JPEG/PNG/WebP images (like models/samples/photos/)';
const imageFile = /\.(png|jpe?g|webp)$/i;

/** `real photos` and `photo-like` in the default set; `images` for a folder given. */
const groupOf = (image: NamedImage, isDefault: boolean) => (!isDefault ? 'images' : isRealPhoto(image) ? 'real photos' : 'photo-like');

registerEvaluator({
  handlerId: 'image-encoder',
  defaultDataPath: photoDir,
  defaultDataLabel: heldOutDescription,
  dataDescription,
  load(dataPath) {
    requireData(dataPath, 'folder', dataDescription);
    const names = readdirSync(dataPath).filter((f) => imageFile.test(f)).sort();
    if (names.length === 0) throw new ModelToolError(`eval: ${dataPath} holds no images — expected ${dataDescription}`);
    const files: NamedImage[] = names.map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(dataPath, name))) }));
    const isDefault = path.resolve(dataPath) === photoDir;
    return {
      size: isDefault ? realPhotos('held-out').length + PHOTO_LIKE_HELD_OUT : files.length,
      async evaluate(reference, candidate): Promise<Evaluation> {
        const images = isDefault ? await heldOutImages() : files;
        const agreement = await encoderAgreement(reference, candidate, images);
        const groups: Record<string, GroupQuality> = {};
        for (const image of images) {
          const group = (groups[groupOf(image, isDefault)] ??= { reference: 1, candidate: 0, samples: 0 });
          group.samples++;
          if (!agreement.disagreements.some((d) => d.name === image.name)) group.candidate++;
        }
        for (const group of Object.values(groups)) group.candidate /= group.samples;
        return {
          metric: `top-1 label agreement with the reference (embedding cosine mean ${agreement.meanCosine.toFixed(4)}, min ${agreement.minCosine.toFixed(4)})`,
          basis: 'reference',
          reference: 1,
          candidate: agreement.top1,
          samples: agreement.images,
          sampleUnit: 'images',
          groups,
        };
      },
    };
  },
});
