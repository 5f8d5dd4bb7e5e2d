/**
 * How much slower local inference runs right now than on an idle, cool
 * device, sampled from systeminformation every few seconds (never per
 * request: a sample costs a /proc read, a temperature read spawns a shell).
 *
 * Contention: the agent's sessions want `threads` cores; other processes
 * keep `otherBusyCores` busy (the whole machine's load minus this process's
 * own CPU time, which includes our inference threads). When the two together
 * exceed the cores there are, each gets a proportional share.
 * Thermal: only once the CPU is at or above `throttleTemperatureC`, the clock
 * the cores run at now against their rated maximum (read only when hot,
 * because idle cores also clock down, which is not throttling).
 */
import os from 'node:os';
import si from 'systeminformation';
import type { Logger } from '../../shared/log.js';

export interface DeviceSlowdown {
  /** Multiplies an idle-device service time. */
  factor: number;
  contention: number;
  thermal: number;
  cpuLoadPercent: number | null;
  temperatureC: number | null;
}

export const idleDevice: DeviceSlowdown = { factor: 1, contention: 1, thermal: 1, cpuLoadPercent: null, temperatureC: null };

export interface LoadReading {
  cores: number;
  /** Cores kept busy by other processes. */
  otherBusyCores: number;
  cpuLoadPercent: number;
  temperatureC: number | null;
  /** Current / rated clock, read only when hot; 1 otherwise. */
  clockRatio: number;
}

/** The slowdown a reading implies for sessions that want `threads` cores. */
export function slowdownFrom(reading: LoadReading, threads: number): DeviceSlowdown {
  const contention = Math.max(1, (reading.otherBusyCores + threads) / reading.cores);
  const thermal = reading.clockRatio > 0 ? Math.min(4, Math.max(1, 1 / reading.clockRatio)) : 1;
  return { factor: contention * thermal, contention, thermal, cpuLoadPercent: reading.cpuLoadPercent, temperatureC: reading.temperatureC };
}

export interface DeviceLoadSamplerOptions {
  intervalMs: number;
  threads: number;
  throttleTemperatureC: number;
  log: Logger;
}

/** Temperature is read on every this-many load samples: systeminformation runs a shell command for it. */
const TEMPERATURE_EVERY = 10;

export class DeviceLoadSampler {
  private slowdown: DeviceSlowdown = idleDevice;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private samples = 0;
  private temperatureC: number | null = null;
  private ratedClockMhz: number | undefined;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();

  private constructor(private readonly options: DeviceLoadSamplerOptions) {}

  /** Takes a first sample (which also sets systeminformation's load baseline) and then one every intervalMs. */
  static async start(options: DeviceLoadSamplerOptions): Promise<DeviceLoadSampler> {
    const sampler = new DeviceLoadSampler(options);
    await sampler.sample();
    return sampler;
  }

  current(): DeviceSlowdown {
    return this.slowdown;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async sample(): Promise<void> {
    try {
      const load = await si.currentLoad();
      const cores = os.availableParallelism();
      const now = performance.now();
      const cpu = process.cpuUsage(this.lastCpu);
      const ownBusyCores = (cpu.user + cpu.system) / 1000 / Math.max(1, now - this.lastAt);
      this.lastCpu = process.cpuUsage();
      this.lastAt = now;
      if (this.samples++ % TEMPERATURE_EVERY === 0) {
        const temperature = await si.cpuTemperature();
        this.temperatureC = typeof temperature.main === 'number' ? temperature.main : null;
      }
      const hot = this.temperatureC !== null && this.temperatureC >= this.options.throttleTemperatureC;
      const reading: LoadReading = {
        cores,
        otherBusyCores: Math.max(0, (load.currentLoad / 100) * cores - ownBusyCores),
        cpuLoadPercent: Math.round(load.currentLoad * 10) / 10,
        temperatureC: this.temperatureC,
        clockRatio: hot ? await this.clockRatio() : 1,
      };
      this.slowdown = slowdownFrom(reading, this.options.threads);
    } catch (err) {
      this.options.log.debug({ err: (err as Error).message }, 'device load not sampled; keeping the previous reading');
    }
    // Chained rather than setInterval, so a slow read never stacks samples up.
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.sample(), this.options.intervalMs);
      this.timer.unref();
    }
  }

  private async clockRatio(): Promise<number> {
    this.ratedClockMhz ??= ((await si.cpu()).speedMax || 0) * 1000;
    const speeds = os.cpus().map((c) => c.speed).filter((mhz) => mhz > 0);
    if (!this.ratedClockMhz || speeds.length === 0) return 1;
    return speeds.reduce((sum, mhz) => sum + mhz, 0) / speeds.length / this.ratedClockMhz;
  }
}
