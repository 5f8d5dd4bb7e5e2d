/**
 * The process's one reader of systeminformation's CPU load. si.currentLoad()
 * reports the load since its previous call, anywhere in the process (one
 * hidden baseline), so two pollers would each see the other's window. Here
 * one poller reads it, together with this process's own CPU time over the
 * same window, and hands every reading to whoever subscribed: the placement
 * policy's device-load sampler, telemetry, `splitinfer doctor`.
 */
import os from 'node:os';
import si from 'systeminformation';

export interface CpuLoad {
  /** Share of all cores busy over the window, 0–100. */
  loadPercent: number;
  /** Cores this process kept busy over the same window (its inference threads included). */
  ownBusyCores: number;
  cores: number;
  /** performance.now() of the reading. */
  at: number;
}

export interface CpuLoadSubscription {
  /** The newest reading; undefined while none has succeeded. */
  latest(): CpuLoad | undefined;
  /** Why the newest attempt failed, when it did. */
  lastError(): string | undefined;
  unsubscribe(): void;
}

interface Subscriber {
  intervalMs: number;
  onReading?: (load: CpuLoad) => void;
}

class CpuLoadPoller {
  private readonly subscribers = new Set<Subscriber>();
  private reading: CpuLoad | undefined;
  private error: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The reading being taken now, if any. */
  private inFlight: Promise<void> | undefined;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private attemptedAt = 0;

  async subscribe(subscriber: Subscriber): Promise<CpuLoadSubscription> {
    this.subscribers.add(subscriber);
    // The first subscriber starts the polling; its first reading also sets systeminformation's baseline.
    if (!this.timer && !this.inFlight) this.inFlight = this.sample();
    if (this.inFlight) {
      await this.inFlight;
    } else {
      this.schedule();
      if (this.reading) subscriber.onReading?.(this.reading);
    }
    return {
      latest: () => this.reading,
      lastError: () => this.error,
      unsubscribe: () => {
        this.subscribers.delete(subscriber);
        if (!this.inFlight) this.schedule();
      },
    };
  }

  private async sample(): Promise<void> {
    this.attemptedAt = performance.now();
    try {
      const load = await si.currentLoad();
      const now = performance.now();
      const cpu = process.cpuUsage(this.lastCpu);
      this.lastCpu = process.cpuUsage();
      this.reading = {
        loadPercent: Math.round(load.currentLoad * 10) / 10,
        ownBusyCores: (cpu.user + cpu.system) / 1000 / Math.max(1, now - this.lastAt),
        cores: os.availableParallelism(),
        at: now,
      };
      this.lastAt = now;
      this.error = undefined;
      for (const subscriber of this.subscribers) subscriber.onReading?.(this.reading);
    } catch (err) {
      this.error = (err as Error).message;
    }
    this.inFlight = undefined;
    this.schedule();
  }

  /**
   * The next reading, as often as the most eager subscriber wants. Chained
   * rather than setInterval, so a slow read never stacks readings up.
   */
  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.subscribers.size === 0) return;
    const intervalMs = Math.min(...[...this.subscribers].map((s) => s.intervalMs));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.sample();
    }, Math.max(0, this.attemptedAt + intervalMs - performance.now()));
    this.timer.unref();
  }
}

const poller = new CpuLoadPoller();

/**
 * Readings at least every `intervalMs` (more often when another subscriber
 * asks for that) until unsubscribed; resolves once the first reading was
 * attempted. `onReading` sees each new reading as it arrives.
 */
export function subscribeCpuLoad(intervalMs: number, onReading?: (load: CpuLoad) => void): Promise<CpuLoadSubscription> {
  return poller.subscribe({ intervalMs, onReading });
}
