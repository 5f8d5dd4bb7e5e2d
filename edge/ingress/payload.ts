/**
 * Request and response payloads: msgpack (`application/msgpack`, binary media
 * as msgpack bin) or JSON (`application/json`, binary media as base64). The
 * MQTT 5 content type names the format; without one (MQTT 3.1.1) the first
 * byte tells: JSON requests are objects (`{`), msgpack maps start at 0x80.
 */
import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv';
import { Packr, Unpackr } from 'msgpackr';
import { invalidArgument, type ErrorCode } from '../../shared/errors.js';
import type { RequestLimits } from '../config.js';
import type { AgentRequest, AgentResponse, ChunkMessage, Modality } from '../request.js';

export type PayloadFormat = 'msgpack' | 'json';

export const contentTypes: Record<PayloadFormat, string> = { msgpack: 'application/msgpack', json: 'application/json' };

const formatsByContentType: Record<string, PayloadFormat> = {
  'application/msgpack': 'msgpack',
  'application/x-msgpack': 'msgpack',
  'application/vnd.msgpack': 'msgpack',
  'application/json': 'json',
};

const modalities: readonly Modality[] = ['text', 'audio', 'image', 'video'];

/** What a request carries besides the AgentRequest: MQTT 3.1.1 has no properties, so the reply address rides in the payload. */
export interface DecodedRequest {
  request: AgentRequest;
  replyTo?: string;
  correlationId?: string;
}

/** A response as published: the agent's answer, a video chunk's, or a request-level error that may lack an id. */
export type ResponsePayload = (AgentResponse | ChunkMessage | Omit<AgentResponse, 'id'>) & { correlationId?: string };

/** The format a payload is in: from the MQTT 5 content type when there is one, else sniffed. */
export function payloadFormat(contentType: string | undefined, payload: Uint8Array): PayloadFormat {
  if (contentType) {
    const format = formatsByContentType[contentType.split(';')[0]!.trim().toLowerCase()];
    if (!format) throw invalidArgument(`content type '${contentType}' is not supported — publish application/msgpack or application/json`);
    return format;
  }
  const hasBom = payload[0] === 0xef && payload[1] === 0xbb && payload[2] === 0xbf;
  const first = payload.subarray(hasBom ? 3 : 0).find((byte) => !jsonWhitespace.has(byte));
  return first === 0x7b || first === 0x5b ? 'json' : 'msgpack';
}

const jsonWhitespace = new Set([0x20, 0x09, 0x0a, 0x0d]);

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false });

/** Bytes → document, or INVALID_ARGUMENT naming what could not be read. */
export function parsePayload(payload: Uint8Array, format: PayloadFormat): unknown {
  try {
    if (format === 'json') return JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(payload));
    return unpackr.unpack(payload);
  } catch (err) {
    const first = Buffer.from(payload.subarray(0, 8)).toString('hex').replace(/(..)(?!$)/g, '$1 ');
    const name = format === 'json' ? 'JSON' : 'msgpack';
    throw invalidArgument(`payload is not valid ${name} (${(err as Error).message}; first bytes ${first || 'none'}) — send one ${name} map with id and inputs`);
  }
}

/**
 * The id and reply address of a document, as far as they can be read, so even
 * a rejected request is answered where it expects. An id or correlation id
 * over `maxIdLength` is left out rather than echoed back.
 */
export function envelopeOf(doc: unknown, maxIdLength: number): { id?: string; replyTo?: string; correlationId?: string } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return {};
  const { id, replyTo, correlationId } = doc as Record<string, unknown>;
  const str = (value: unknown, maxLength = Infinity) => (typeof value === 'string' && value.length > 0 && value.length <= maxLength ? value : undefined);
  return { id: str(id, maxIdLength), replyTo: str(replyTo), correlationId: str(correlationId, maxIdLength) };
}

const videoSourceSchema = {
  type: 'object',
  required: ['source', 'seconds'],
  additionalProperties: false,
  properties: { source: { type: 'string', minLength: 1, maxLength: 2048 }, seconds: { type: 'number', exclusiveMinimum: 0 } },
};

type SchemaLimits = Pick<RequestLimits, 'maxVideoFrames' | 'maxDeadlineMs' | 'maxIdLength'>;

function requestSchema(media: SchemaObject, limits: SchemaLimits): SchemaObject {
  return {
    type: 'object',
    required: ['id', 'inputs'],
    additionalProperties: false,
    properties: {
      id: { type: 'string', minLength: 1, maxLength: limits.maxIdLength },
      inputs: {
        type: 'object',
        minProperties: 1,
        additionalProperties: false,
        properties: {
          text: { type: 'string', minLength: 1 },
          audio: media,
          image: media,
          // Three forms, told apart by type so an error speaks of the form that was sent.
          video: {
            if: { type: 'array' },
            then: { type: 'array', minItems: 1, maxItems: limits.maxVideoFrames, items: media },
            else: { if: { type: 'object', required: ['source'] }, then: videoSourceSchema, else: media },
          },
        },
      },
      deadlineMs: { type: 'number', minimum: 1, maximum: limits.maxDeadlineMs },
      stream: { type: 'boolean' },
      prefer: { type: 'object', propertyNames: { enum: modalities }, additionalProperties: { enum: ['edge', 'cloud'] } },
      task: { type: 'object', additionalProperties: false, properties: { image: { enum: ['read', 'encode'] } } },
      quality: {
        type: 'object',
        propertyNames: { enum: modalities },
        additionalProperties: { anyOf: [{ enum: ['best', 'fast'] }, { type: 'number', minimum: 0, maximum: 1 }] },
      },
      replyTo: { type: 'string', minLength: 1 },
      correlationId: { type: 'string', maxLength: limits.maxIdLength },
    },
  };
}

// verbose: errors carry the value, so a message can say how far over a limit it was.
const ajv = new Ajv({ allErrors: false, verbose: true });
ajv.addKeyword({ keyword: 'binary', schemaType: 'boolean', errors: false, validate: (_: boolean, data: unknown) => data instanceof Uint8Array });

/** The request shape under the configured limits, compiled once per ingress. */
export type RequestValidators = Record<PayloadFormat, ValidateFunction>;

export function requestValidators(limits: SchemaLimits): RequestValidators {
  return {
    msgpack: ajv.compile(requestSchema({ binary: true }, limits)),
    json: ajv.compile(requestSchema({ type: 'string', pattern: '^[A-Za-z0-9+/_-]*={0,2}$' }, limits)),
  };
}

/** Checks a parsed document against the request shape and turns JSON base64 media into bytes. */
export function toAgentRequest(doc: unknown, format: PayloadFormat, validators: RequestValidators): DecodedRequest {
  const validate = validators[format];
  if (!validate(doc)) throw invalidArgument(describeProblem(validate.errors![0]!, format));
  const { replyTo, correlationId, ...fields } = doc as AgentRequest & { replyTo?: string; correlationId?: string };
  const bytes = (value: unknown): Uint8Array => (typeof value === 'string' ? Buffer.from(value, 'base64') : (value as Uint8Array));
  const inputs = { ...fields.inputs };
  if (inputs.audio !== undefined) inputs.audio = bytes(inputs.audio);
  if (inputs.image !== undefined) inputs.image = bytes(inputs.image);
  const video = inputs.video;
  if (Array.isArray(video)) inputs.video = video.map(bytes);
  else if (video !== undefined && !isVideoSource(video)) inputs.video = bytes(video);
  return { request: { ...fields, inputs }, replyTo, correlationId };
}

function isVideoSource(value: unknown): value is { source: string; seconds: number } {
  return typeof value === 'object' && value !== null && 'source' in value;
}

function describeProblem(error: ErrorObject, format: PayloadFormat): string {
  const where = error.instancePath ? `'${error.instancePath.slice(1).replaceAll('/', '.')}'` : 'request';
  const params = error.params as Record<string, unknown>;
  if (/^\/quality\/[^/]+$/.test(error.instancePath)) return `${where} must be 'best', 'fast' or a number from 0 to 1 (the least agreement with the reference model)`;
  switch (error.keyword) {
    case 'required':
      if (error.instancePath === '/inputs/video') return `inputs.video has no '${String(params.missingProperty)}' — a video source is { source, seconds }`;
      return params.missingProperty === 'id'
        ? `request has no 'id' — give every request a non-empty string id; the response echoes it`
        : `${where} has no '${String(params.missingProperty)}' — put the media under inputs.text, inputs.audio, inputs.image or inputs.video`;
    case 'additionalProperties':
      return error.instancePath === '/inputs'
        ? `unknown modality '${String(params.additionalProperty)}' in inputs (expected ${modalities.join(', ')})`
        : error.instancePath === '/inputs/video'
          ? `unknown field '${String(params.additionalProperty)}' in inputs.video (a video source has source and seconds)`
          : error.instancePath === '/task'
          ? `task names '${String(params.additionalProperty)}', but only image has more than one task (task.image: 'read' or 'encode')`
          : `unknown field '${String(params.additionalProperty)}' in ${where} (a request has id, inputs, deadlineMs, stream, prefer, task, quality, replyTo, correlationId)`;
    case 'enum':
      return error.propertyName !== undefined
        ? `${error.instancePath.slice(1)} names unknown modality '${error.propertyName}' (expected ${modalities.join(', ')})`
        : `${where} must be one of ${(params.allowedValues as unknown[]).map((v) => `'${String(v)}'`).join(', ')}`;
    case 'minLength':
      return `${where} is empty`;
    case 'maxLength':
      return `${where} has ${(error.data as string).length} characters, over the limit of ${String(params.limit)} (limits.maxIdLength) — use a shorter one`;
    case 'maxItems':
      return `${where} has ${(error.data as unknown[]).length} frames, over the limit of ${String(params.limit)} (limits.maxVideoFrames) — send fewer frames per request`;
    case 'exclusiveMinimum':
      return `${where} is ${String(error.data)}; it must be more than ${String(params.limit)}`;
    case 'minimum':
      return `${where} is ${String(error.data)} ms; a deadline must be at least 1 ms — leave deadlineMs out for the agent's default`;
    case 'maximum':
      return `${where} is ${String(error.data)} ms, over the limit of ${String(params.limit)} ms (limits.maxDeadlineMs, 24 h at most) — ask for a shorter deadline`;
    case 'minProperties':
      return `inputs is empty — send at least one of ${modalities.join(', ')}`;
    case 'binary':
      return `${where} must be msgpack binary (bin) holding the media bytes`;
    case 'pattern':
      return `${where} must be base64 (JSON requests carry media bytes as base64 strings)`;
    case 'type':
      if (!error.instancePath) return 'request must be a map with id and inputs';
      return `${where} must be ${String(params.type)}${format === 'json' && /audio|image|video/.test(where) ? ' (base64 of the media bytes)' : ''}`;
    default:
      return `${where} ${error.message ?? 'is invalid'}`;
  }
}

/** Response → bytes in the request's format. JSON writes binary values as base64. */
export function encodeResponse(response: ResponsePayload, format: PayloadFormat): Buffer {
  if (format === 'msgpack') return Buffer.from(packr.pack(response));
  return Buffer.from(
    JSON.stringify(response, function (this: Record<string, unknown>, key, value: unknown) {
      const raw = this[key];
      return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
    }),
  );
}

/** A response that carries only a request-level error (the request never reached the agent). */
export function requestErrorResponse(code: ErrorCode, message: string, id?: string): ResponsePayload {
  return { ...(id === undefined ? {} : { id }), results: {}, placement: {}, timings: {}, errors: { request: { code, message } } };
}
