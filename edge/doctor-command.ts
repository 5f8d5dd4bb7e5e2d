import os from 'node:os';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import mqtt from 'mqtt';
import ort from 'onnxruntime-node';
import { GRPCInferenceService } from '../shared/gen/inference/grpc_service_pb.js';
import { callUnary } from '../shared/grpc-service.js';
import { InferenceClient } from '../shared/inference-client.js';
import { redactUrlCredentials } from '../shared/secrets.js';
import { detectProviderHost, selectProviders } from '../shared/ort/providers.js';
import { edgeConfigFromFlags, edgeFlags } from './command.js';
import type { EdgeConfig } from './config.js';
import { subscribeCpuLoad } from './cpu-load.js';
import { checkBundle, checkConfig, checkTlsFiles, checkUnit, type Check } from './doctor-install.js';
import { brokerConnectOptions } from './ingress/broker-security.js';
import { cloudChannelSecurity, describeCloudLink } from './offload/cloud-link.js';
import { readDeviceLoad } from './telemetry.js';

const help = `usage: splitinfer doctor [--config FILE] [--broker URL] [--protocol 5|4] [--cloud HOST:PORT] [--cloud-tls-* FILE] [--timeout-ms N]

Checks what the edge agent needs on this device: the splitinfer-edge service
(when installed), the config, the bundle's native code against this machine,
the TLS files the config names, onnxruntime-node and its execution providers,
CPU, memory and temperature, and whether the configured MQTT broker and cloud
tier answer. Takes the same config and flags as splitinfer edge (an installed
agent: --config /etc/splitinfer/edge.yaml). Exits 0 when everything needed
answers, 1 otherwise.`;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

function checkOrt(): Check {
  const selection = selectProviders(['cuda', 'cpu'], detectProviderHost());
  const skipped = selection.skipped.map((s) => `\n      ${s.provider} not usable: ${s.reason}`).join('');
  return { name: 'onnxruntime', ok: true, detail: `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}, usable providers: ${selection.providers.join(', ')}${skipped}` };
}

async function checkDevice(): Promise<Check> {
  const cpuLoad = await subscribeCpuLoad(1_000);
  const load = await readDeviceLoad(cpuLoad).finally(() => cpuLoad.unsubscribe());
  const temperature = load.temperatureC === null ? 'temperature not reported by this OS' : `temperature ${load.temperatureC} °C`;
  const detail = `${os.platform()} ${os.arch()}, ${os.availableParallelism()} cores, CPU load ${load.cpuLoadPercent} %, memory ${gib(load.memory.usedBytes)} used of ${gib(load.memory.totalBytes)} (${gib(load.memory.availableBytes)} available), ${temperature}`;
  return { name: 'device', ok: true, detail };
}

async function checkBroker(config: EdgeConfig, timeoutMs: number): Promise<Check> {
  const { protocolVersion } = config.broker;
  const url = redactUrlCredentials(config.broker.url);
  const started = performance.now();
  const name = 'mqtt broker';
  const protocol = protocolVersion === 5 ? 'MQTT 5' : 'MQTT 3.1.1';
  try {
    const client = await mqtt.connectAsync(
      config.broker.url,
      { protocolVersion, clientId: `splitinfer-doctor-${process.pid}`, clean: true, reconnectPeriod: 0, connectTimeout: timeoutMs, ...brokerConnectOptions(config.broker) },
      false,
    );
    const ms = performance.now() - started;
    await client.endAsync(true);
    return { name, ok: true, detail: `${url} answered ${protocol} CONNECT in ${ms.toFixed(0)} ms` };
  } catch (err) {
    return { name, ok: false, detail: `${url} did not accept an ${protocol} connection: ${(err as Error).message} — is the broker running, and is --broker right?` };
  }
}

async function checkCloud(config: EdgeConfig, timeoutMs: number): Promise<Check> {
  const name = 'cloud tier';
  const { address } = config.cloud;
  const { transport } = describeCloudLink(config.cloud);
  let client: InferenceClient;
  try {
    client = new InferenceClient(address, {}, cloudChannelSecurity(config.cloud));
  } catch (err) {
    return { name, ok: false, detail: `${address}: ${(err as Error).message}` };
  }
  const started = performance.now();
  try {
    const deadline = Date.now() + timeoutMs;
    const { live } = await callUnary(client.grpc, GRPCInferenceService.method.serverLive, {}, { deadline });
    const { ready } = await callUnary(client.grpc, GRPCInferenceService.method.serverReady, {}, { deadline });
    const ms = performance.now() - started;
    if (!live) return { name, ok: false, detail: `${address} answered ServerLive with live=false` };
    // ServerLive and ServerReady may answer anyone; ServerMetadata shows whether the cloud accepts this device's credentials.
    const refused = await callUnary(client.grpc, GRPCInferenceService.method.serverMetadata, {}, { deadline }).then(
      () => undefined,
      (err: grpc.ServiceError) => (err.code === grpc.status.UNAUTHENTICATED ? err.details : undefined),
    );
    if (refused) return { name, ok: false, detail: `${address} is live but refused this device's credentials: ${refused} — check cloud.apiKeyFile / cloud.apiKeyEnv or the device certificate` };
    const state = ready ? 'live and ready' : 'live but not ready (starting or draining): images run locally until it is';
    return { name, ok: true, detail: `${address} ${state} over ${transport} (ServerLive + ServerReady in ${ms.toFixed(0)} ms)` };
  } catch (err) {
    return { name, ok: false, detail: `${address} did not answer ServerLive over ${transport}: ${(err as Error).message} — is splitinfer cloud running there, and are --cloud and its TLS settings right?` };
  } finally {
    client.close();
  }
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...edgeFlags, 'timeout-ms': { type: 'string' } } });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const config = edgeConfigFromFlags(values);
  const timeoutMs = Number(values['timeout-ms'] ?? 3_000);
  const checks = [
    await checkUnit(),
    checkConfig(values.config, config),
    checkBundle(),
    checkTlsFiles(config),
    checkOrt(),
    ...(await Promise.all([checkDevice(), checkBroker(config, timeoutMs), checkCloud(config, timeoutMs)])),
  ];
  console.log(`splitinfer doctor: device ${config.deviceId}\n`);
  for (const check of checks) console.log(`${check.ok ? '✓' : '✗'} ${check.name.padEnd(12)} ${check.detail}`);
  const failed = checks.filter((c) => !c.ok).length;
  console.log(failed === 0 ? '\nall checks passed' : `\n${failed} check${failed > 1 ? 's' : ''} failed`);
  return failed === 0 ? 0 : 1;
}
