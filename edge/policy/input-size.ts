/**
 * How big a task's input is, in the unit its model's cost follows (pixels,
 * seconds of audio, bytes of text): each model's handler measures its own
 * inputs from headers only, so measuring costs far less than the inference
 * it helps place.
 */
import type { InputSize, ModelHandler } from '../../shared/handlers/handler.js';

export type { InputSize, ItemSize, SizeUnit } from '../../shared/handlers/handler.js';

/** The size of each item of a task (one per video frame), measured by the task's model handler. */
export async function measureInputSize(handler: ModelHandler, items: readonly Uint8Array[]): Promise<InputSize> {
  return { unit: handler.sizeUnit, items: await Promise.all(items.map((item) => handler.measureInput(item))) };
}
