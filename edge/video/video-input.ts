/** A request's `inputs.video` as what the decoder reads; container bytes over the config's limit are refused here, sources by the decoder. */
import { InferError } from '../../shared/errors.js';
import type { VideoInputValue } from '../request.js';
import { checkContainerBytes, type VideoInput } from './decode.js';
import type { VideoConfig } from './video-config.js';

export function videoInput(value: VideoInputValue | undefined, config: VideoConfig): VideoInput {
  if (value === undefined) throw new InferError('INVALID_ARGUMENT', 'the request has no inputs.video');
  if (Array.isArray(value)) return { kind: 'frames', frames: value };
  if (value instanceof Uint8Array) {
    checkContainerBytes(value, config.maxContainerBytes);
    return { kind: 'container', bytes: value };
  }
  return { kind: 'source', source: value.source, seconds: value.seconds };
}
