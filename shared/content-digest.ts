/**
 * An input tensor's content digest: SHA-256 over its contents in KServe v2's
 * raw encoding (what one `raw_input_contents` entry holds: a BYTES element is
 * its uint32 little-endian length then its bytes; numbers are little-endian).
 * The cloud's response-cache key is built from these digests, so an edge
 * that knows an input's digest can ask for an answer without uploading the
 * input (content-addressed offload, `content_sha256`).
 */
import { createHash } from 'node:crypto';
import type { Tensor } from './tensor.js';

export function contentSha256(tensor: Tensor): string {
  const hash = createHash('sha256');
  if (tensor.type === 'bytes') {
    const length = Buffer.alloc(4);
    for (const item of tensor.data as Uint8Array[]) {
      length.writeUInt32LE(item.byteLength);
      hash.update(length);
      hash.update(item);
    }
  } else {
    const data = tensor.data as Exclude<Tensor['data'], Uint8Array[]>;
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex');
}
