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
  let same = 0;
  let cosineSum = 0;
  let minCosine = Infinity;
  const disagreements: EncoderAgreement['disagreements'] = [];
  for (const { name, bytes } of images) {
    const a = (await reference.run(bytes)).result as unknown as EncoderResult;
    const b = (await candidate.run(bytes)).result as unknown as EncoderResult;
    // Embeddings are L2-normalised by the handler, so their dot product is the cosine.
    const c = cosine(a.embedding, b.embedding);
    cosineSum += c;
    minCosine = Math.min(minCosine, c);
    if (a.labels[0]!.label === b.labels[0]!.label) same++;
    else disagreements.push({ name, reference: a.labels[0]!.label, candidate: b.labels[0]!.label });
  }
  return { images: images.length, top1: same / images.length, meanCosine: cosineSum / images.length, minCosine, disagreements };
}
