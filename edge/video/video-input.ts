/** A request's `inputs.video` as what the decoder reads, refused when it breaks the config's limits or names a source not allowed. */
import { InferError } from '../../shared/errors.js';
import type { VideoInputValue } from '../request.js';
import { checkContainerBytes, type VideoInput } from './decode.js';
import type { VideoConfig } from './video-config.js';
import { checkVideoSource } from './video-source.js';

export function videoInput(value: VideoInputValue | undefined, config: VideoConfig): VideoInput {
  if (value === undefined) throw new InferError('INVALID_ARGUMENT', 'the request has no inputs.video');
  if (Array.isArray(value)) return { kind: 'frames', frames: value };
  if (value instanceof Uint8Array) {
    checkContainerBytes(value, config.maxContainerBytes);
    return { kind: 'container', bytes: value };
  }
  return { kind: 'source', source: checkVideoSource(value.source, config.sources), seconds: value.seconds };
}
