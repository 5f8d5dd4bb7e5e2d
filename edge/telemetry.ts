/**
 * Device load (systeminformation) and request counts, published as JSON on
 * `splitinfer/v1/<deviceId>/telemetry` every telemetryIntervalS. QoS 0 and
 * not retained: a sample is only worth something while it is fresh, and a
 * missed one is replaced by the next.
 */
import type { MqttClient } from 'mqtt';
import si from 'systeminformation';
import type { Logger } from '../shared/log.js';
import { subscribeCpuLoad, type CpuLoadSubscription } from './cpu-load.js';

export interface DeviceLoad {
  /** Share of all cores busy over the CPU-load poller's newest window (edge/cpu-load.ts), 0–100. */
  cpuLoadPercent: number;
  /** usedBytes counts memory held by processes, not the page cache. */
  memory: { totalBytes: number; usedBytes: number; availableBytes: number };
  /** Main CPU sensor; null where the OS exposes none (containers, most VMs). */
  temperatureC: number | null;
}

export async function readDeviceLoad(cpuLoad: CpuLoadSubscription): Promise<DeviceLoad> {
  const load = cpuLoad.latest();
  if (!load) throw new Error(`CPU load not read: ${cpuLoad.lastError() ?? 'no reading yet'}`);
  const [mem, temperature] = await Promise.all([si.mem(), si.cpuTemperature()]);
  return {
    cpuLoadPercent: load.loadPercent,
    memory: { totalBytes: mem.total, usedBytes: mem.active, availableBytes: mem.available },
    temperatureC: typeof temperature.main === 'number' ? temperature.main : null,
  };
}

export interface TelemetrySample extends DeviceLoad {
  deviceId: string;
  /** ISO 8601 time of the reading. */
  at: string;
  requests: Record<string, unknown>;
}

export interface TelemetryOptions {
  client: MqttClient;
  deviceId: string;
  topic: string;
  intervalS: number;
  protocolVersion: 4 | 5;
  /** Request counts at the time of each sample (the agent's and the ingress's). */
  requests: () => Record<string, unknown>;
  log: Logger;
}

/** Publishes one sample now and then every intervalS until stopped. */
export function startTelemetry(options: TelemetryOptions): { stop(): void } {
  const { client, topic, log } = options;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const cpuLoad = subscribeCpuLoad(options.intervalS * 1000);
  const tick = async () => {
    try {
      const sample: TelemetrySample = { deviceId: options.deviceId, at: new Date().toISOString(), ...(await readDeviceLoad(await cpuLoad)), requests: options.requests() };
      if (client.connected && !stopped) {
        const properties = options.protocolVersion === 5 ? { properties: { contentType: 'application/json' } } : {};
        await client.publishAsync(topic, JSON.stringify(sample), { qos: 0, ...properties });
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'telemetry sample not published');
    }
    // Chained rather than setInterval, so a slow sensor read never stacks samples up.
    if (!stopped) timer = setTimeout(tick, options.intervalS * 1000);
  };
  void tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      void cpuLoad.then((subscription) => subscription.unsubscribe());
    },
  };
}
