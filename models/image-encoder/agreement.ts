/**
 * How closely one image-encoder variant follows another of the same network
 * (INT8 against its FP32): the share of images on which both give the same
 * top label, and the cosine between their embeddings, through the handler.
 */
import type { EncoderResult } from '../../shared/handlers/image-encoder.js';
import type { LoadedModel } from '../../shared/loaded-model.js';
import type { NamedImage } from './photo-like-images.js';

export interface EncoderAgreement {
  images: number;
  /** Share of images with the same top-1 label. */
  top1: number;
  meanCosine: number;
  minCosine: number;
  /** The images whose top-1 labels differ, with both labels. */
  disagreements: { name: string; reference: string; candidate: string }[];
}

const cosine = (a: readonly number[], b: readonly number[]) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);

export async function encoderAgreement(reference: LoadedModel, candidate: LoadedModel, images: readonly NamedImage[]): Promise<EncoderAgreement> {
  const a = await encodeAll(reference, images);
  const b = await encodeAll(candidate, images);
  // Embeddings are L2-normalised by the handler, so their dot product is the cosine.
  const cosines = a.map((r, i) => cosine(r.embedding, b[i]!.embedding));
  const disagreements = images.flatMap(({ name }, i) => {
    const [ref, cand] = [a[i]!.labels[0]!.label, b[i]!.labels[0]!.label];
    return ref === cand ? [] : [{ name, reference: ref, candidate: cand }];
  });
  return {
    images: images.length,
    top1: topLabelAgreement(a, b),
    meanCosine: cosines.reduce((sum, c) => sum + c, 0) / images.length,
    minCosine: Math.min(...cosines),
    disagreements,
  };
}

/** Each image's answer from one encoder variant, through the handler, in order. */
export async function encodeAll(model: LoadedModel, images: readonly NamedImage[]): Promise<EncoderResult[]> {
  const results: EncoderResult[] = [];
  for (const { bytes } of images) results.push((await model.run(bytes)).result as unknown as EncoderResult);
  return results;
}

/** Share of images on which two encoders (of any networks) give the same top-1 label. */
export function topLabelAgreement(a: readonly EncoderResult[], b: readonly EncoderResult[]): number {
  return a.filter((r, i) => r.labels[0]!.label === b[i]!.labels[0]!.label).length / a.length;
}

/** The `k` images nearest to image `i` by embedding cosine, itself left out. */
function nearest(embeddings: readonly (readonly number[])[], i: number, k: number): Set<number> {
  return new Set(
    embeddings
      .map((e, j) => ({ j, similarity: cosine(embeddings[i]!, e) }))
      .filter(({ j }) => j !== i)
      .sort((x, y) => y.similarity - x.similarity)
      .slice(0, k)
      .map(({ j }) => j),
  );
}

/**
 * How alike two encoders arrange a set of images: for each image, the share
 * of its `k` nearest neighbours within the set (by embedding cosine) that
 * both encoders find, averaged over the images. Embeddings of different
 * networks are not comparable, neighbourhoods are; two unrelated
 * arrangements overlap by k / (n − 1) on average.
 */
export function neighbourAgreement(a: readonly (readonly number[])[], b: readonly (readonly number[])[], k: number): number {
  if (a.length !== b.length || a.length <= k) throw new Error(`neighbourAgreement: needs two embeddings per image and more than k = ${k} images, got ${a.length} and ${b.length}`);
  let shared = 0;
  for (let i = 0; i < a.length; i++) {
    const inB = nearest(b, i, k);
    shared += [...nearest(a, i, k)].filter((j) => inB.has(j)).length;
  }
  return shared / (k * a.length);
}
