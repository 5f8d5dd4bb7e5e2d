/**
 * How the agent turns `inputs.video` into chunks (edge/video/): sampling,
 * the frame filter, chunking, what may be read from the device, and the
 * limits that keep one stream from taking the device over.
 */
export interface VideoConfig {
  /** Frames per second of media sampled from a container or source (a frame list is taken as sampled at this rate). */
  sampleFps: number;
  /** Kept frames per chunk: each chunk is one placement decision and one cloud request. */
  chunkFrames: number;
  /** Frames are scaled while decoding so the long side is at most this (never up). */
  decodeMaxSide: number;
  /**
   * A frame whose small grey thumbnail differs from the last kept frame's by
   * less than this mean absolute difference (0–1 of full scale) is dropped;
   * 0 keeps every frame.
   */
  filterThreshold: number;
  /** Chunks placed and not yet answered, per video; a live source drops frames beyond them, other inputs wait. */
  chunksInFlight: number;
  /** Seconds of media one request may cover. */
  maxSeconds: number;
  /** Sampled frames one request may cover. */
  maxFrames: number;
  /** Videos decoded at once by this agent; more are refused with RESOURCE_EXHAUSTED. */
  maxSessions: number;
  /** Bytes of a container sent in the request. */
  maxContainerBytes: number;
  /** Prefixes of the sources (`rtsp://…`, `file:///…`, `/dev/videoN`) a request may name; empty: none. */
  sources: string[];
  /** The ffmpeg executable; empty: `ffmpeg` on PATH, else the one @ffmpeg-installer ships. */
  ffmpegPath: string;
}

export const videoConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    sampleFps: { type: 'number', exclusiveMinimum: 0, maximum: 60, default: 4 },
    chunkFrames: { type: 'integer', minimum: 1, maximum: 64, default: 16 },
    decodeMaxSide: { type: 'integer', minimum: 32, maximum: 4096, default: 640 },
    filterThreshold: { type: 'number', minimum: 0, maximum: 1, default: 0.02 },
    chunksInFlight: { type: 'integer', minimum: 1, maximum: 16, default: 2 },
    maxSeconds: { type: 'number', exclusiveMinimum: 0, default: 600 },
    maxFrames: { type: 'integer', minimum: 1, default: 3600 },
    maxSessions: { type: 'integer', minimum: 1, default: 2 },
    maxContainerBytes: { type: 'integer', minimum: 1024, default: 8 * 1024 * 1024 },
    sources: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    ffmpegPath: { type: 'string', default: '' },
  },
};
