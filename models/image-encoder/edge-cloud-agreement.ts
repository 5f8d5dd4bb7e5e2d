/**
 * How closely the edge's MobileNetV2 (fp32 and the INT8 default) follows
 * the cloud's reference, fp32 InceptionV3, on the held-out images: top-1
 * label agreement (what the catalog's agreementWithReference records and
 * the edge's quality floor reads) and neighbour agreement, the overlap of
 * each image's k = 5 nearest neighbours within the set in each network's
 * embedding space (the embeddings themselves are not comparable across
 * networks; see agreement.ts). Figures are given for the held-out real
 * photos, the ones that matter, and for the whole held-out set.
 *
 * Run: tsc -p . && node dist/models/image-encoder/edge-cloud-agreement.js
 */
import { findModel, loadCatalog } from '../../shared/catalog.js';
import { loadModel } from '../../shared/loaded-model.js';
import { createLogger } from '../../shared/log.js';
import { encodeAll, neighbourAgreement, topLabelAgreement } from './agreement.js';
import { heldOutImages, isRealPhoto } from './photo-like-images.js';

const reference = 'fp32';
const edgeVariants = ['mobilenet-v2', 'mobilenet-v2-int8'];
const k = 5;

const catalogModel = findModel(loadCatalog(), 'image-encoder');
const log = createLogger('edge-cloud-agreement', 'warn');
const held = await heldOutImages();
const sets = { 'real photos': held.filter(isRealPhoto), 'all held-out': held };
const answers: Record<string, Awaited<ReturnType<typeof encodeAll>>> = {};
for (const variant of [reference, ...edgeVariants]) {
  const model = await loadModel(catalogModel, variant, { providers: ['cpu'], intraOpThreads: 2 }, log);
  try {
    answers[variant] = await encodeAll(model, held);
  } finally {
    await model.close();
  }
}
for (const [label, set] of Object.entries(sets)) {
  const at = set.map((image) => held.indexOf(image));
  const of = (variant: string) => at.map((i) => answers[variant]![i]!);
  console.log(`${label} (${set.length} images; neighbour overlap by chance ${(k / (set.length - 1)).toFixed(3)}):`);
  for (const variant of edgeVariants) {
    const top1 = topLabelAgreement(of(variant), of(reference));
    const neighbours = neighbourAgreement(
      of(variant).map((r) => r.embedding),
      of(reference).map((r) => r.embedding),
      k,
    );
    console.log(`  ${variant} vs ${reference} InceptionV3: top-1 ${(top1 * 100).toFixed(1)}% (${Math.round(top1 * set.length)}/${set.length}), k=${k} neighbour agreement ${neighbours.toFixed(3)}`);
  }
  const int8Top1 = topLabelAgreement(of('mobilenet-v2-int8'), of('mobilenet-v2'));
  const int8Neighbours = neighbourAgreement(
    of('mobilenet-v2-int8').map((r) => r.embedding),
    of('mobilenet-v2').map((r) => r.embedding),
    k,
  );
  console.log(`  mobilenet-v2-int8 vs mobilenet-v2: top-1 ${(int8Top1 * 100).toFixed(1)}%, k=${k} neighbour agreement ${int8Neighbours.toFixed(3)}`);
}
