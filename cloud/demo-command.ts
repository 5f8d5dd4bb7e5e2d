import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceClient } from '../shared/inference-client.js';
import { createLogger } from '../shared/log.js';
import { packageRoot } from '../shared/paths.js';
import { loadCloudConfig } from './config.js';
import { startCloudServer } from './server.js';

const help = `usage: splitinfer demo [--cloud host:port]

Starts the cloud tier on a free loopback port (or uses --cloud) and sends it
real requests: text in zh/en/ja, a spoken WAV, images with printed text.
Prints each answer and its latency, then exits.`;

const fixture = (...parts: string[]) => path.join(packageRoot, 'test', 'fixtures', ...parts);
const utf8 = (text: string) => new TextEncoder().encode(text);

interface DemoRequest {
  label: string;
  model: string;
  input: () => Promise<Uint8Array>;
  show: (result: Record<string, unknown>) => string;
}

const requests: DemoRequest[] = [
  ...[
    ['zh', '我的订单什么时候发货？'],
    ['en', 'I forgot my password for the learning portal'],
    ['ja', '診察の予約をキャンセルしたいです'],
  ].map(([lang, text]) => ({
    label: `text (${lang}) "${text}"`,
    model: 'text-intent',
    input: async () => utf8(text!),
    show: (r: Record<string, unknown>) => `intent ${String(r.intent)} (confidence ${Number(r.confidence).toFixed(2)})`,
  })),
  {
    label: 'audio speech-en.wav (8.4 s, espeak-ng)',
    model: 'audio-vad',
    input: () => readFile(fixture('audio', 'speech-en.wav')),
    show: (r) => `speech at ${(r.segments as { startMs: number; endMs: number }[]).map((s) => `${s.startMs}-${s.endMs} ms`).join(', ')}`,
  },
  ...['invoice.png', 'edge-notice.webp'].map((file) => ({
    label: `image ${file}`,
    model: 'image-ocr',
    input: () => readFile(fixture('ocr', file)),
    show: (r: Record<string, unknown>) => (r.lines as { text: string }[]).map((l) => JSON.stringify(l.text)).join(' / '),
  })),
];

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { cloud: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  let address = values.cloud;
  let drain: (() => Promise<void>) | undefined;
  if (!address) {
    console.log('starting the cloud tier on 127.0.0.1 (loading and warming up models)...');
    const started = performance.now();
    const server = await startCloudServer(loadCloudConfig(undefined, { host: '127.0.0.1', port: 0, metricsPort: -1 }), createLogger('cloud', process.env.SPLITINFER_LOG_LEVEL ?? 'warn'));
    address = `127.0.0.1:${server.port}`;
    drain = () => server.drain(5_000);
    console.log(`cloud tier ready on ${address} in ${Math.round(performance.now() - started)} ms: ${server.repository.names().join(', ')}\n`);
  }
  const client = new InferenceClient(address);
  let failures = 0;
  try {
    for (const [i, request] of requests.entries()) {
      const started = performance.now();
      try {
        const answer = await client.inferPipeline(request.model, await request.input(), { id: `demo-${i + 1}`, deadlineMs: 30_000 });
        const totalMs = performance.now() - started;
        console.log(`${request.model.padEnd(11)} ${request.label}`);
        console.log(`            → ${request.show(answer.result)}`);
        console.log(`            ${totalMs.toFixed(1)} ms total, server queue ${(answer.queueUs / 1000).toFixed(1)} ms, compute ${(answer.computeUs / 1000).toFixed(1)} ms\n`);
      } catch (err) {
        failures++;
        console.log(`${request.model.padEnd(11)} ${request.label}\n            ✗ ${(err as Error).message}\n`);
      }
    }
  } finally {
    client.close();
    await drain?.();
  }
  console.log(failures === 0 ? `all ${requests.length} requests answered` : `${failures} of ${requests.length} requests failed`);
  return failures === 0 ? 0 : 1;
}
