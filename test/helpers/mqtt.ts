/**
 * Real MQTT brokers for tests (mosquitto on a free port, the demo's embedded aedes),
 * clients, a collector to wait for the messages a topic receives, and a
 * requester that talks to an agent as an MQTT 5 or MQTT 3.1.1 client would.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { pack, unpack } from 'msgpackr';
import type { Placement } from '../../edge/request.js';
import { freeLoopbackPort, startEmbeddedBroker } from '../../edge/local-stack.js';

export interface TestBroker {
  name: string;
  url: string;
  protocolVersion: 4 | 5;
  stop(): Promise<void>;
}

/** Absolute path of a program on PATH or in the sbin folders (mosquitto installs to /usr/sbin), or undefined. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/opt/homebrew/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return path.join(dir, name);
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** Why mosquitto tests cannot run here, or undefined when they can. */
export const mosquittoMissing: string | undefined = ['mosquitto', 'mosquitto_passwd', 'mosquitto_pub', 'mosquitto_sub']
  .filter((program) => !findProgram(program))
  .map((program) => `${program} is not installed (apt-get install mosquitto mosquitto-clients)`)
  .join('; ') || undefined;

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with code ${child.exitCode} before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(true));
      socket.on('error', () => resolve(false));
      socket.on('connect', () => socket.destroy());
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface MosquittoOptions {
  /** A TLS listener (mqtts://) with these PEM files; `requireCertificate` makes clients present one `ca` signed. */
  tls?: { ca: string; cert: string; key: string; requireCertificate: boolean };
  /** Username → password; when set, anonymous clients are refused. */
  passwords?: Record<string, string>;
  /** The whole config instead of the one made from the options above, given the free port it must listen on (e.g. deploy/mosquitto/mosquitto.conf rewritten for a test); `tls` still picks mqtts:// for the URL. */
  config?: (port: number) => string;
  /**
   * Keep sessions and queued QoS 1 messages in this folder (saved when
   * mosquitto stops and every second), so a broker started again on `port`
   * with it resumes them.
   */
  persistenceDir?: string;
  /** Listen on this loopback port (a restarted broker keeps its URL); default a free one. */
  port?: number;
}

/** mosquitto on a free loopback port, Nagle off; speaks MQTT 5 and 3.1.1. No persistence, anonymous and plaintext unless `options` say otherwise. */
export async function startMosquitto(protocolVersion: 4 | 5 = 5, options: MosquittoOptions = {}): Promise<TestBroker> {
  const program = findProgram('mosquitto');
  if (!program) throw new Error(mosquittoMissing);
  const port = options.port ?? (await freeLoopbackPort());
  const dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-mosquitto-'));
  const configFile = path.join(dir, 'mosquitto.conf');
  // set_tcp_nodelay: mosquitto leaves Nagle on by default, and then holds a response to a
  // requester until that requester ACKs the PUBACK mosquitto sent it just before (~40 ms).
  // `user`: mosquitto started as root drops to the user `mosquitto`, who cannot read this run's private temp folders.
  const { tls, passwords, persistenceDir } = options;
  const persistence = persistenceDir ? ['persistence true', `persistence_location ${persistenceDir}/`, 'autosave_interval 1'] : ['persistence false'];
  const lines = [`listener ${port} 127.0.0.1`, ...persistence, 'set_tcp_nodelay true', `user ${userInfo().username}`];
  if (tls) lines.push(`cafile ${tls.ca}`, `certfile ${tls.cert}`, `keyfile ${tls.key}`, `require_certificate ${tls.requireCertificate}`);
  if (passwords) {
    const passwordFile = path.join(dir, 'passwords');
    writeFileSync(passwordFile, '');
    for (const [user, password] of Object.entries(passwords)) execFileSync(findProgram('mosquitto_passwd')!, ['-b', passwordFile, user, password]);
    lines.push('allow_anonymous false', `password_file ${passwordFile}`);
  } else {
    lines.push('allow_anonymous true');
  }
  writeFileSync(configFile, options.config ? options.config(port) : `${lines.join('\n')}\n`);
  const child = spawn(program, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await waitForPort(port, child, 5_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}: ${stderr}`, { cause: err });
  }
  return {
    name: `mosquitto (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'})`,
    url: `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    protocolVersion,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The embedded aedes broker of `splitinfer demo` (MQTT 3.1.1) on a free loopback port. */
export async function startAedes(): Promise<TestBroker> {
  return { name: 'aedes (MQTT 3.1.1)', ...(await startEmbeddedBroker()) };
}

/**
 * A plain client (clean session) that fails fast instead of retrying, with
 * Nagle off: a client that publishes right after acknowledging a response
 * (one request after another) would otherwise wait ~40 ms for the broker's
 * delayed ACK of that PUBACK.
 */
export async function connectClient(broker: Pick<TestBroker, 'url' | 'protocolVersion'>, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion, reconnectPeriod: 0, connectTimeout: 5_000, ...options }, false);
  (client.stream as net.Socket).setNoDelay(true);
  return client;
}

export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

/** Records every message a client receives on `filter`, so a test can wait for the one it expects. */
export class MessageCollector {
  readonly messages: ReceivedMessage[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, packet });
      for (const wake of this.waiters) wake();
    });
  }

  static async subscribe(client: MqttClient, filter: string | string[]): Promise<MessageCollector> {
    const collector = new MessageCollector(client);
    await client.subscribeAsync(filter, { qos: 1 });
    return collector;
  }

  matching(predicate: (message: ReceivedMessage) => boolean): ReceivedMessage[] {
    return this.messages.filter(predicate);
  }

  /** The first message (already received or yet to come) that matches; rejects after timeoutMs. */
  async waitFor(predicate: (message: ReceivedMessage) => boolean, timeoutMs = 20_000, what = 'a matching message'): Promise<ReceivedMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.messages.map((m) => `${m.topic}: ${m.payload.subarray(0, 120).toString()}`).join('\n  ');
        throw new Error(`no ${what} within ${timeoutMs} ms; received:\n  ${seen || '(nothing)'}`);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }
}

/** Decodes a response by its MQTT 5 content type, or by its first byte (MQTT 3.1.1). */
export function decodeResponse(message: ReceivedMessage): AgentReply {
  const contentType = message.packet.properties?.contentType;
  const json = contentType ? contentType === 'application/json' : message.payload[0] === 0x7b;
  return (json ? JSON.parse(message.payload.toString('utf8')) : unpack(message.payload)) as AgentReply;
}

/** JSON.stringify replacer: binary values as base64 (`this[key]` is the value before Buffer#toJSON). */
function base64Media(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? Buffer.from(raw).toString('base64') : value;
}

/** A response as a test reads it (results are whatever each model returns). */
export interface AgentReply {
  id?: string;
  correlationId?: string;
  results: Record<string, any>;
  placement: Record<string, Placement>;
  timings: Record<string, { totalMs: number; queueMs: number; computeMs: number; transferMs: number }>;
  errors?: Record<string, { code: string; message: string }>;
  /** Video: false on a chunk message (which carries `chunk`), true on the final answer. */
  final?: boolean;
  chunk?: number;
}

export interface AskOptions {
  format?: 'msgpack' | 'json';
  /** MQTT 5 content type to send instead of the format's own (e.g. an unsupported one). */
  contentType?: string;
  timeoutMs?: number;
}

/**
 * Publishes requests to an agent the way a client of that protocol version
 * would, and waits for the matching response: MQTT 5 with Response Topic and
 * Correlation Data, MQTT 3.1.1 with replyTo/correlationId in the payload.
 */
export class AgentRequester {
  private sequence = 0;

  private constructor(
    readonly client: MqttClient,
    readonly collector: MessageCollector,
    readonly protocolVersion: 4 | 5,
    readonly requestTopic: string,
    readonly replyTopic: string,
    readonly defaultReplyTopic: string,
  ) {}

  static async connect(broker: Pick<TestBroker, 'url' | 'protocolVersion'>, deviceId: string, extraTopics: string[] = [], options: IClientOptions = {}): Promise<AgentRequester> {
    const client = await connectClient(broker, options);
    const base = `splitinfer/v1/${deviceId}`;
    const replyTopic = `test/${deviceId}/replies`;
    const collector = await MessageCollector.subscribe(client, [replyTopic, `${base}/res`, ...extraTopics]);
    return new AgentRequester(client, collector, broker.protocolVersion, `${base}/req`, replyTopic, `${base}/res`);
  }

  /** Sends a request document and returns its response (and the raw message). */
  async ask(body: Record<string, unknown>, options: AskOptions = {}): Promise<{ reply: AgentReply; message: ReceivedMessage }> {
    return this.answer(await this.send(body, options), options.timeoutMs);
  }

  /** The response to a request sent with `send` (its final one, after any video chunk messages). */
  async answer(token: string, timeoutMs = 30_000): Promise<{ reply: AgentReply; message: ReceivedMessage }> {
    const message = await this.collector.waitFor((m) => this.correlationOf(m) === token && decodeResponse(m).final !== false, timeoutMs, `response to ${token}`);
    return { reply: decodeResponse(message), message };
  }

  /** Every message received so far for a request, in arrival order (video chunk messages, then the final one). */
  repliesTo(token: string): AgentReply[] {
    return this.collector.matching((m) => this.correlationOf(m) === token).map(decodeResponse);
  }

  /** Publishes a document (with this client's reply address) and returns its correlation token. */
  async send(body: Record<string, unknown>, options: AskOptions = {}, token = `c-${process.pid}-${++this.sequence}`): Promise<string> {
    const format = options.format ?? 'msgpack';
    const doc = this.protocolVersion === 5 ? body : { ...body, replyTo: this.replyTopic, correlationId: token };
    const bytes = format === 'json' ? Buffer.from(JSON.stringify(doc, base64Media)) : pack(doc);
    await this.publish(bytes, { ...options, format }, token);
    return token;
  }

  /**
   * Publishes raw bytes. Over MQTT 5 the response is found by correlation; over
   * 3.1.1 unreadable bytes carry no reply address, so it is the next message on the default topic.
   */
  async askRaw(bytes: Uint8Array, options: AskOptions = {}): Promise<{ reply: AgentReply; message: ReceivedMessage }> {
    const token = `raw-${process.pid}-${++this.sequence}`;
    const seen = this.collector.messages.length;
    await this.publish(bytes, options, token);
    const message = await this.collector.waitFor(
      (m) => (this.protocolVersion === 5 ? this.correlationOf(m) === token : m.topic === this.defaultReplyTopic && this.collector.messages.indexOf(m) >= seen),
      options.timeoutMs ?? 10_000,
      'response to raw bytes',
    );
    return { reply: decodeResponse(message), message };
  }

  /** Responses received so far for a correlation token. */
  answersTo(token: string): ReceivedMessage[] {
    return this.collector.matching((m) => this.correlationOf(m) === token);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }

  private async publish(bytes: Uint8Array, options: AskOptions, token: string): Promise<void> {
    const contentType = options.contentType ?? (options.format === 'json' ? 'application/json' : 'application/msgpack');
    const properties = { responseTopic: this.replyTopic, correlationData: Buffer.from(token), contentType };
    await this.client.publishAsync(this.requestTopic, Buffer.from(bytes), { qos: 1, ...(this.protocolVersion === 5 ? { properties } : {}) });
  }

  private correlationOf(message: ReceivedMessage): string | undefined {
    if (this.protocolVersion === 5) return message.packet.properties?.correlationData?.toString();
    try {
      return decodeResponse(message).correlationId;
    } catch {
      return undefined;
    }
  }
}
