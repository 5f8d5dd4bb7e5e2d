import type { SchemaObject } from 'ajv';
import { loadConfig } from '../shared/config.js';
import type { Modality, Site } from './request.js';

export interface ModalityConfig {
  /** Catalog model id that serves this modality. */
  model: string;
  /** Variant the edge runs locally; empty means this modality has no local fallback. */
  localVariant: string;
  /** Where it runs when nothing else decides (the request's prefer and cloud health come first). */
  placement: Site;
}

export interface EdgeConfig {
  deviceId: string;
  broker: {
    url: string;
    /** 5 (response topic + correlation data) or 4 (MQTT 3.1.1: replyTo/correlationId in the payload). */
    protocolVersion: 4 | 5;
    username: string;
    password: string;
    /** Seconds; also drives how fast the broker publishes the offline last will. */
    keepaliveS: number;
  };
  /** host:port of the cloud tier (KServe v2 gRPC); dns:///name:port balances over every replica. */
  cloud: string;
  modalities: Record<Modality, ModalityConfig>;
  /** ORT intra-op threads per local session. */
  intraOpThreads: number;
  /** Images are shrunk before offload: longest side and JPEG quality. */
  offload: { imageMaxSide: number; jpegQuality: number; defaultDeadlineMs: number; keepaliveMs: number };
  limits: { maxPayloadBytes: number; maxConcurrentRequests: number };
  telemetryIntervalS: number;
  /** How many recent request ids are remembered to answer a redelivered request once. */
  dedupWindow: number;
}

const modalitySchema = (model: string, localVariant: string, placement: Site) => ({
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    model: { type: 'string', default: model },
    localVariant: { type: 'string', default: localVariant },
    placement: { enum: ['edge', 'cloud'], default: placement },
  },
});

export const edgeConfigSchema: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    deviceId: { type: 'string', pattern: '^[^/#+]+$', default: 'device-1' },
    broker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
        protocolVersion: { enum: [4, 5], default: 5 },
        username: { type: 'string', default: '' },
        password: { type: 'string', default: '' },
        keepaliveS: { type: 'integer', minimum: 1, default: 10 },
      },
    },
    cloud: { type: 'string', default: '127.0.0.1:8001' },
    modalities: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        text: modalitySchema('text-intent', 'fp32', 'edge'),
        audio: modalitySchema('audio-vad', 'fp32', 'edge'),
        image: modalitySchema('image-ocr', 'fp32', 'cloud'),
        video: modalitySchema('image-ocr', 'fp32', 'cloud'),
      },
    },
    intraOpThreads: { type: 'integer', minimum: 1, default: 1 },
    offload: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        imageMaxSide: { type: 'integer', minimum: 32, default: 1280 },
        jpegQuality: { type: 'integer', minimum: 1, maximum: 100, default: 85 },
        defaultDeadlineMs: { type: 'integer', minimum: 1, default: 10_000 },
        keepaliveMs: { type: 'integer', minimum: 1000, default: 10_000 },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxPayloadBytes: { type: 'integer', minimum: 1024, default: 8 * 1024 * 1024 },
        maxConcurrentRequests: { type: 'integer', minimum: 1, default: 16 },
      },
    },
    telemetryIntervalS: { type: 'number', minimum: 0.1, default: 30 },
    dedupWindow: { type: 'integer', minimum: 1, default: 1000 },
  },
};

export function loadEdgeConfig(file?: string, overrides: Record<string, unknown> = {}): EdgeConfig {
  return loadConfig<EdgeConfig>(edgeConfigSchema, file, overrides);
}
