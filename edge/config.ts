import type { SchemaObject } from 'ajv';
import { loadConfig } from '../shared/config.js';
import { tracingConfigSchema, type TracingConfig } from '../shared/tracing.js';
import { checkCloudLink, cloudLinkSchema, upgradeCloudSetting, type CloudLinkConfig } from './offload/cloud-link.js';
import { brokerSecuritySchema, type BrokerSecurity } from './ingress/broker-security.js';
import { checkDeliveryConfig, deliveryConfigSchema, stateDirSchema, type DeliveryConfig } from './ingress/delivery-config.js';
import type { Modality, Site } from './request.js';
import { videoConfigSchema, type VideoConfig } from './video/video-config.js';

/** How one task of a modality runs: its model, local variant and placement. */
export interface TaskSettings {
  /** Catalog model id that serves this task. */
  model: string;
  /** Variant the edge runs locally; empty means this modality has no local fallback. */
  localVariant: string;
  /** Where it runs when nothing else decides (the request's prefer and cloud health come first). */
  placement: Site;
  /**
   * For every strategy (the constraint step, policy/constraints.ts): '' lets
   * the strategy choose; 'edge' keeps every task of this modality on the
   * device (nothing leaves it); 'cloud' always offloads, running the local
   * variant only while the cloud is down or when it fails.
   */
  pin: '' | Site;
  /**
   * Default quality floor of a request that sets no `quality`: the lowest
   * top-1 agreement with the reference (the cloud's fp32) variant the local
   * variant must have declared in the catalog to run here; 0 lets any.
   */
  minAgreement: number;
  /**
   * The device also holds the model's reference variant (the cloud's fp32),
   * opened on the first task whose quality floor rules the local variant
   * out, when memory allows (memoryReserveMB): such a task may then run on
   * the edge too (while the cloud is down, or where placement finds it
   * faster) instead of only in the cloud. Not for video.
   */
  localReference: boolean;
}

/** A modality's default task (OCR for images), and the image modality's `encode` task. */
export interface ModalityConfig extends TaskSettings {
  encode?: TaskSettings;
}

/** An offline measurement of one modality, for the `static-profile` strategy. */
export interface ModalityProfile {
  edgeMs: number;
  /** The cloud's queue + compute. */
  cloudMs: number;
  payloadBytes: number;
}

/** Placement strategy and its estimators (edge/policy/). */
export interface PolicyConfig {
  /** A registered strategy: rules, adaptive, always-local, always-cloud, confidence, static-profile. */
  strategy: string;
  /** Lowest accuracy (1 − the catalog's accuracyCost of a payload-shaping option) the adaptive strategy may pick. */
  accuracyFloor: number;
  /** Switch sides only when the other is faster by this share of the current side's expected time. */
  hysteresis: number;
  /** Most tasks (as a share of all decided) run on the path not chosen, to keep its estimates fresh. */
  exploreShare: number;
  /** Seed of the exploration draws, so a run can be repeated. */
  seed: number;
  /** A side whose newest sample is older than this is explored first. */
  staleAfterMs: number;
  /** Samples per estimator window (per size bucket for service times). */
  estimateWindow: number;
  /** Link and cloud-queue samples older than this are forgotten. */
  estimateMaxAgeMs: number;
  /** ServerLive probe when the RTT estimate is older than this. */
  probeIdleMs: number;
  /** Offloads in flight and no answer for this long: probe the link, and stop offloading if the probe is not answered in time. */
  stallSilenceMs: number;
  /** What the stall probe may take beyond the uplink wait and two round trips before the link counts as stalled. */
  stallProbeSlackMs: number;
  /** Offloads at least this big measure uplink bandwidth; smaller ones measure RTT. */
  minBandwidthPayloadBytes: number;
  /** An uplink bandwidth sample's weight halves every this many ms, so a link change shows within a few transfers. */
  uplinkHalfLifeMs: number;
  /** How often CPU load (and every 10th time, temperature) is sampled. */
  loadSampleMs: number;
  /** At or above it, a lower CPU clock counts as thermal throttling. */
  throttleTemperatureC: number;
  /** `confidence` strategy: edge results below it are run again in the cloud. */
  confidenceThreshold: number;
  /** `static-profile` strategy: offline measurements at a nominal link. */
  staticProfile: { uplinkMbps: number; rttMs: number; modalities: Partial<Record<Modality, ModalityProfile>> };
}

export interface EdgeConfig {
  deviceId: string;
  broker: BrokerSecurity & {
    url: string;
    /** 5 (response topic + correlation data) or 4 (MQTT 3.1.1: replyTo/correlationId in the payload). */
    protocolVersion: 4 | 5;
    username: string;
    password: string;
    /** Seconds; also drives how fast the broker publishes the offline last will. */
    keepaliveS: number;
  };
  /** The cloud tier and how to reach it (`cloud: "host:port"` is accepted too). */
  cloud: CloudLinkConfig;
  modalities: Record<Modality, ModalityConfig>;
  /** ORT intra-op threads per local session. */
  intraOpThreads: number;
  /** Memory (MB) that must stay available after a reference variant is opened on demand (`localReference`); short of it, the load is refused and tried again a minute later. */
  memoryReserveMB: number;
  /** Images are shrunk before offload: longest side and JPEG quality. */
  offload: {
    imageMaxSide: number;
    jpegQuality: number;
    defaultDeadlineMs: number;
    keepaliveMs: number;
    /** An offload that times out counts against the cloud (circuit breaker) only when its budget was at least this, and two high round trips. */
    minFaultBudgetMs: number;
    /** Ask the cloud by an input's digest before uploading it, when that is likely to save the upload (offload/content-address.ts). */
    contentAddressing: boolean;
  };
  limits: RequestLimits;
  /** How `inputs.video` is decoded, filtered and chunked (edge/video/). */
  video: VideoConfig;
  /**
   * Topic prefixes a request may name as its reply address (MQTT 5 Response
   * Topic or 3.1.1 `replyTo`); empty: any topic outside the `splitinfer/v1/`
   * tree (but this device's own `res`) and `$` topics. A refused reply
   * address gets no publish at all (edge/ingress/reply-route.ts).
   */
  replyPrefixes: string[];
  telemetryIntervalS: number;
  /** Prometheus endpoint port (edge/metrics.ts); -1 (default): off; 0 picks a free one. */
  metricsPort: number;
  /** Loopback by default: a device's metrics are exposed only by choice. */
  metricsHost: string;
  /** Optional export of request spans over OTLP/HTTP (shared/tracing.ts). */
  tracing: TracingConfig;
  /** Folder of the agent's state (the request journal), the same across restarts; '' for the default (delivery-config.ts). */
  stateDir: string;
  /** The journal's bounds, how long answers are kept, how long SIGTERM waits. */
  delivery: DeliveryConfig;
  policy: PolicyConfig;
}

/** What one request may ask of the agent; over a limit, the request is refused with a message naming the limit. */
export interface RequestLimits {
  /** Request payload bytes; also announced to an MQTT 5 broker as the Maximum Packet Size (plus room for topic and properties). */
  maxPayloadBytes: number;
  /** Requests run at once; more wait unacknowledged at the broker (announced to an MQTT 5 broker as Receive Maximum). */
  maxConcurrentRequests: number;
  /**
   * Requests of one requester (reply topic) in the agent at once, waiting for a slot or running; one more is
   * answered RESOURCE_EXHAUSTED. 0: no limit, so one requester's backlog is worked off (a device with one requester).
   */
  maxConcurrentPerRequester: number;
  /** JPEG frames in an `inputs.video` frame list. */
  maxVideoFrames: number;
  /** Largest `deadlineMs` a request may ask for (the smallest is 1 ms); at most 24 h, where Node's timers still work. */
  maxDeadlineMs: number;
  /** Characters in a request `id` and `correlationId`. */
  maxIdLength: number;
  /** UTF-8 bytes in a reply address. */
  maxReplyTopicBytes: number;
  /** Pixels of all images and video frames of one request together, read from their headers before anything is decoded. */
  maxDecodedPixels: number;
}

/** A task's settings with the path naming them under config `modalities` (`image`, `image.encode`). */
export interface PlacedTaskSettings {
  path: string;
  modality: Modality;
  settings: TaskSettings;
}

/** Every task's settings: each modality's default task, then the `encode` tasks. */
export function allTaskSettings(modalities: EdgeConfig['modalities']): PlacedTaskSettings[] {
  const entries = Object.entries(modalities) as [Modality, ModalityConfig][];
  return [
    ...entries.map(([modality, settings]) => ({ path: modality, modality, settings })),
    ...entries.flatMap(([modality, { encode }]) => (encode ? [{ path: `${modality}.encode`, modality, settings: encode }] : [])),
  ];
}

/** 24 h: Node fires a timer longer than 2³¹−1 ms at once, so no deadline may come near it. */
export const maxDeadlineMs = 86_400_000;

const taskSettingsSchema = (model: string, localVariant: string, placement: Site, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    model: { type: 'string', default: model },
    localVariant: { type: 'string', default: localVariant },
    placement: { enum: ['edge', 'cloud'], default: placement },
    pin: { enum: ['', 'edge', 'cloud'], default: '' },
    minAgreement: { type: 'number', minimum: 0, maximum: 1, default: 0 },
    localReference: { type: 'boolean', default: false },
    ...extra,
  },
});

const profileSchema = {
  type: 'object',
  required: ['edgeMs', 'cloudMs', 'payloadBytes'],
  additionalProperties: false,
  properties: { edgeMs: { type: 'number', minimum: 0 }, cloudMs: { type: 'number', minimum: 0 }, payloadBytes: { type: 'integer', minimum: 0 } },
};

const policySchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    strategy: { type: 'string', default: 'rules' },
    accuracyFloor: { type: 'number', minimum: 0, maximum: 1, default: 0.95 },
    hysteresis: { type: 'number', minimum: 0, maximum: 0.9, default: 0.15 },
    exploreShare: { type: 'number', minimum: 0, maximum: 0.5, default: 0.05 },
    seed: { type: 'integer', default: 1 },
    staleAfterMs: { type: 'integer', minimum: 1, default: 10_000 },
    estimateWindow: { type: 'integer', minimum: 1, default: 16 },
    estimateMaxAgeMs: { type: 'integer', minimum: 100, default: 30_000 },
    probeIdleMs: { type: 'integer', minimum: 100, default: 5_000 },
    stallSilenceMs: { type: 'integer', minimum: 50, default: 250 },
    stallProbeSlackMs: { type: 'integer', minimum: 50, default: 1_000 },
    minBandwidthPayloadBytes: { type: 'integer', minimum: 1, default: 4 * 1024 },
    uplinkHalfLifeMs: { type: 'integer', minimum: 100, default: 3_000 },
    loadSampleMs: { type: 'integer', minimum: 100, default: 2_000 },
    throttleTemperatureC: { type: 'number', default: 85 },
    confidenceThreshold: { type: 'number', minimum: 0, maximum: 1, default: 0.8 },
    staticProfile: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        uplinkMbps: { type: 'number', exclusiveMinimum: 0, default: 10 },
        rttMs: { type: 'number', minimum: 0, default: 50 },
        modalities: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: { text: profileSchema, audio: profileSchema, image: profileSchema, video: profileSchema },
        },
      },
    },
  },
};

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
        ...brokerSecuritySchema,
      },
    },
    cloud: cloudLinkSchema,
    modalities: {
      type: 'object',
      additionalProperties: false,
      default: {},
      // The edge runs the INT8 variants the toolchain made (models/catalog.yaml); the cloud keeps fp32.
      properties: {
        text: taskSettingsSchema('text-intent', 'int8-pruned', 'edge'),
        audio: taskSettingsSchema('audio-vad', 'int8', 'edge'),
        // `encode`: the cloud answers with InceptionV3 (fp32), the edge holds the INT8 MobileNetV2.
        image: taskSettingsSchema('image-ocr', 'int8', 'cloud', { encode: taskSettingsSchema('image-encoder', 'mobilenet-v2-int8', 'cloud') }),
        // Chunks of frames: InceptionV3 with per-sequence state in the cloud, the INT8 MobileNetV2 on the edge.
        video: taskSettingsSchema('video-encoder', 'mobilenet-v2-int8', 'cloud'),
      },
    },
    intraOpThreads: { type: 'integer', minimum: 1, default: 1 },
    memoryReserveMB: { type: 'integer', minimum: 0, default: 256 },
    offload: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        imageMaxSide: { type: 'integer', minimum: 32, default: 1280 },
        jpegQuality: { type: 'integer', minimum: 1, maximum: 100, default: 85 },
        defaultDeadlineMs: { type: 'integer', minimum: 1, maximum: maxDeadlineMs, default: 10_000 },
        keepaliveMs: { type: 'integer', minimum: 1000, default: 10_000 },
        minFaultBudgetMs: { type: 'integer', minimum: 1, default: 500 },
        // On: it asks first only where the expected saving beats the extra round trip, and only a cloud that caches is asked.
        contentAddressing: { type: 'boolean', default: true },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxPayloadBytes: { type: 'integer', minimum: 1024, default: 8 * 1024 * 1024 },
        maxConcurrentRequests: { type: 'integer', minimum: 1, maximum: 65_535, default: 16 },
        maxConcurrentPerRequester: { type: 'integer', minimum: 0, default: 0 },
        maxVideoFrames: { type: 'integer', minimum: 1, default: 64 },
        maxDeadlineMs: { type: 'integer', minimum: 1, maximum: maxDeadlineMs, default: maxDeadlineMs },
        maxIdLength: { type: 'integer', minimum: 1, default: 256 },
        maxReplyTopicBytes: { type: 'integer', minimum: 1, maximum: 65_535, default: 1024 },
        maxDecodedPixels: { type: 'integer', minimum: 1, default: 100_000_000 },
      },
    },
    video: videoConfigSchema,
    replyPrefixes: { type: 'array', items: { type: 'string', minLength: 1, pattern: '^[^+#\\u0000]*$' }, default: [] },
    telemetryIntervalS: { type: 'number', minimum: 0.1, default: 30 },
    metricsPort: { type: 'integer', minimum: -1, maximum: 65535, default: -1 },
    metricsHost: { type: 'string', minLength: 1, default: '127.0.0.1' },
    tracing: tracingConfigSchema('splitinfer-edge'),
    stateDir: stateDirSchema,
    delivery: deliveryConfigSchema,
    policy: policySchema,
  },
};

export function loadEdgeConfig(file?: string, overrides: Record<string, unknown> = {}): EdgeConfig {
  const config = loadConfig<EdgeConfig>(edgeConfigSchema, file, overrides, upgradeCloudSetting);
  checkCloudLink(config.cloud);
  checkDeliveryConfig(config.delivery, config.limits.maxPayloadBytes);
  for (const { path, settings: { pin, localVariant } } of allTaskSettings(config.modalities)) {
    if (pin === 'edge' && !localVariant) {
      throw new Error(`config modalities.${path}.pin is 'edge', but its localVariant is '' — set a local variant to run it on this device, or remove the pin`);
    }
  }
  return config;
}
