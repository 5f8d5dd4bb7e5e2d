/**
 * How much slower local inference runs right now than on an idle, cool
 * device, updated on each reading of the process's CPU-load poller
 * (edge/cpu-load.ts) every few seconds (never per request: a reading costs a
 * /proc read, a temperature read spawns a shell).
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
import { subscribeCpuLoad, type CpuLoad, type CpuLoadSubscription } from '../cpu-load.js';

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

/** Temperature is read on every this-many load readings: systeminformation runs a shell command for it. */
const TEMPERATURE_EVERY = 10;

export class DeviceLoadSampler {
  private slowdown: DeviceSlowdown = idleDevice;
  private cpuLoad: CpuLoadSubscription | undefined;
  private updating: Promise<void> | undefined;
  private readings = 0;
  private temperatureC: number | null = null;
  private ratedClockMhz: number | undefined;

  private constructor(private readonly options: DeviceLoadSamplerOptions) {}

  /** Updates from the first CPU-load reading (and the temperature) before it resolves, then on every reading. */
  static async start(options: DeviceLoadSamplerOptions): Promise<DeviceLoadSampler> {
    const sampler = new DeviceLoadSampler(options);
    sampler.cpuLoad = await subscribeCpuLoad(options.intervalMs, (load) => sampler.update(load));
    await sampler.updating;
    return sampler;
  }

  current(): DeviceSlowdown {
    return this.slowdown;
  }

  stop(): void {
    this.cpuLoad?.unsubscribe();
  }

  private update(load: CpuLoad): void {
    // A slow temperature read is still going: the next reading catches up.
    this.updating ??= this.slowdownFrom(load).finally(() => (this.updating = undefined));
  }

  private async slowdownFrom(load: CpuLoad): Promise<void> {
    try {
      if (this.readings++ % TEMPERATURE_EVERY === 0) {
        const temperature = await si.cpuTemperature();
        this.temperatureC = typeof temperature.main === 'number' ? temperature.main : null;
      }
      const hot = this.temperatureC !== null && this.temperatureC >= this.options.throttleTemperatureC;
      const reading: LoadReading = {
        cores: load.cores,
        otherBusyCores: Math.max(0, (load.loadPercent / 100) * load.cores - load.ownBusyCores),
        cpuLoadPercent: load.loadPercent,
        temperatureC: this.temperatureC,
        clockRatio: hot ? await this.clockRatio() : 1,
      };
      this.slowdown = slowdownFrom(reading, this.options.threads);
    } catch (err) {
      this.options.log.debug({ err: (err as Error).message }, 'device temperature or clock not read; keeping the previous slowdown');
    }
  }

  private async clockRatio(): Promise<number> {
    this.ratedClockMhz ??= ((await si.cpu()).speedMax || 0) * 1000;
    const speeds = os.cpus().map((c) => c.speed).filter((mhz) => mhz > 0);
    if (!this.ratedClockMhz || speeds.length === 0) return 1;
    return speeds.reduce((sum, mhz) => sum + mhz, 0) / speeds.length / this.ratedClockMhz;
  }
}
