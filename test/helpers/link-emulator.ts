/**
 * A userspace link emulator (this kernel has no netem): a TCP proxy on
 * 127.0.0.1 that forwards to a target (gRPC over HTTP/2 passes through as
 * bytes) and imposes, per direction, a rate from a trace, a one-way delay of
 * RTT/2 with jitter, and outage windows.
 *
 * Model: each direction is one bottleneck shared by every connection (FIFO, as
 * a router queue), serializing 4 KiB slices at the trace's rate at the time the
 * slice starts; a slice then propagates for its delay and is written out in
 * order (jitter never reorders bytes within a connection: a slice waits for the
 * one before it). A connection whose bottleneck queue exceeds `queueBytes` is
 * paused at its source (TCP backpressure reaches the sender).
 *
 * Loss: dropping bytes from a TCP byte stream would corrupt it, so `lossRate`
 * is the chance that a slice arrives `lossDelayMs` late (head-of-line blocking,
 * as a TCP retransmission causes). During an outage no bytes flow either way:
 * slices wait at the bottleneck and at delivery until it ends. `outageMode`
 * says what happens to connections: 'stall' keeps them (bytes wait), 'refuse'
 * resets new ones, 'reset' also resets the open ones when the outage starts.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { seededRandom } from '../../shared/seeded-random.js';
import { constantTrace, transferEndS, type BandwidthTrace } from './bandwidth-trace.js';

/** Mbit/s, a trace (replayed from when it is set), or null for unlimited. */
export type RateSpec = BandwidthTrace | number | null;

/** Seconds from when the outages are set; without `endS` it lasts until outages are set again. */
export interface OutageWindow {
  startS: number;
  endS?: number;
}

export type OutageMode = 'stall' | 'refuse' | 'reset';

export interface LinkConditions {
  rttMs: number;
  /** Each slice's one-way delay is RTT/2 ± up to `jitterMs` (uniform, never below 0). */
  jitterMs: number;
  /** Client → target. */
  uplink: RateSpec;
  /** Target → client. */
  downlink: RateSpec;
  outages: readonly OutageWindow[];
  outageMode: OutageMode;
  lossRate: number;
  lossDelayMs: number;
}

export interface LinkEmulatorOptions extends Partial<LinkConditions> {
  targetPort: number;
  targetHost?: string;
  /** Seed of the jitter and loss draws, so a run can be repeated. */
  seed?: number;
  /** Bytes a connection may have waiting at a bottleneck before its source is paused. */
  queueBytes?: number;
}

export interface LinkStats {
  /** Bytes delivered to the target / to the client. */
  uplinkBytes: number;
  downlinkBytes: number;
  connectionsAccepted: number;
  connectionsOpen: number;
  connectionsRefused: number;
  connectionsReset: number;
}

export interface LinkEmulator {
  port: number;
  /** `127.0.0.1:<port>`, for a gRPC client. */
  address: string;
  setConditions(conditions: Partial<LinkConditions>): void;
  stats(): LinkStats;
  close(): Promise<void>;
}

type Direction = 'uplink' | 'downlink';

const sliceBytes = 4096;
/** Bytes in propagation per connection direction before the source is paused (an unlimited rate has no queue). */
const inFlightLimitBytes = 8 * 1024 * 1024;
const defaultConditions: LinkConditions = { rttMs: 0, jitterMs: 0, uplink: null, downlink: null, outages: [], outageMode: 'stall', lossRate: 0, lossDelayMs: 200 };

interface Pipe {
  transmitted(data: Buffer, endMs: number): void;
  flush(): void;
  stop(): void;
}

interface Slice {
  pipe: Pipe;
  data: Buffer;
  arrivedMs: number;
  startMs?: number;
  endMs?: number;
}

function checkConditions(c: LinkConditions): void {
  const wrong = (what: string) => new Error(`link emulator: ${what}`);
  if (!(c.rttMs >= 0) || !(c.jitterMs >= 0) || !(c.lossDelayMs >= 0)) throw wrong(`rttMs, jitterMs and lossDelayMs must be >= 0 (got ${c.rttMs}, ${c.jitterMs}, ${c.lossDelayMs})`);
  if (!(c.lossRate >= 0 && c.lossRate <= 1)) throw wrong(`lossRate is a probability per slice, 0 to 1 (got ${c.lossRate})`);
  for (const rate of [c.uplink, c.downlink]) {
    if (typeof rate === 'number' && !(rate > 0)) throw wrong(`a rate must be > 0 Mbit/s, null for unlimited, or a trace (got ${rate}); use outages for no link`);
  }
  if (!['stall', 'refuse', 'reset'].includes(c.outageMode)) throw wrong(`outageMode must be 'stall', 'refuse' or 'reset' (got '${c.outageMode}')`);
  for (const w of c.outages) {
    if (!(w.startS >= 0) || (w.endS !== undefined && !(w.endS > w.startS))) throw wrong(`outage window {startS: ${w.startS}, endS: ${w.endS}} needs 0 <= startS < endS`);
  }
}

export async function startLinkEmulator(options: LinkEmulatorOptions): Promise<LinkEmulator> {
  const { targetPort, targetHost = '127.0.0.1', seed = 1, queueBytes = 64 * 1024, ...initial } = options;
  const random = seededRandom(seed);
  const now = () => performance.now();
  let conditions: LinkConditions = { ...defaultConditions };
  const traceEpochMs: Record<Direction, number> = { uplink: now(), downlink: now() };
  let outageWindows: { startMs: number; endMs: number }[] = [];
  const outageTimers = new Set<NodeJS.Timeout>();
  const connections = new Set<{ client: net.Socket; upstream: net.Socket; pipes: Pipe[] }>();
  const counters = { uplinkBytes: 0, downlinkBytes: 0, connectionsAccepted: 0, connectionsRefused: 0, connectionsReset: 0 };

  /** `tMs` itself when the link is up then, else when the outage holding it ends (Infinity if open-ended). */
  function linkUpFrom(tMs: number): number {
    let t = tMs;
    for (let moved = true; moved; ) {
      moved = false;
      for (const w of outageWindows) {
        if (w.startMs <= t && t < w.endMs) {
          t = w.endMs;
          moved = true;
        }
      }
    }
    return t;
  }

  function createBottleneck(direction: Direction) {
    const queue: Slice[] = [];
    let freeAtMs = 0;
    let timer: NodeJS.Timeout | undefined;
    const transferEndMs = (startMs: number, bytes: number): number => {
      const rate = conditions[direction];
      if (rate === null) return startMs;
      const trace = typeof rate === 'number' ? constantTrace(rate) : rate;
      const epochMs = traceEpochMs[direction];
      return epochMs + 1000 * transferEndS(trace, (startMs - epochMs) / 1000, bytes * 8);
    };
    // Completes every slice whose serialization ended by now (timers may fire late; the
    // next slice starts when the previous ended, so no time is lost), then sleeps until the next end.
    const pump = (): void => {
      clearTimeout(timer);
      timer = undefined;
      const t = now();
      while (queue.length > 0) {
        const head = queue[0]!;
        if (head.endMs === undefined) {
          head.startMs = linkUpFrom(Math.max(head.arrivedMs, freeAtMs));
          if (head.startMs === Infinity) return; // open-ended outage: setConditions pumps again
          head.endMs = transferEndMs(head.startMs, head.data.length);
        }
        if (head.endMs > t) {
          if (head.endMs !== Infinity) timer = setTimeout(pump, head.endMs - t);
          return;
        }
        queue.shift();
        freeAtMs = head.endMs;
        head.pipe.transmitted(head.data, head.endMs);
      }
    };
    return {
      enqueue(slice: Slice): void {
        queue.push(slice);
        if (queue.length === 1) pump();
      },
      /** New conditions: a slice not yet started is scheduled again under them. */
      reschedule(): void {
        const head = queue[0];
        if (head && head.startMs !== undefined && head.startMs > now()) head.startMs = head.endMs = undefined;
        pump();
      },
      stop: () => clearTimeout(timer),
    };
  }
  const bottlenecks: Record<Direction, ReturnType<typeof createBottleneck>> = { uplink: createBottleneck('uplink'), downlink: createBottleneck('downlink') };

  function createPipe(direction: Direction, source: net.Socket, dest: net.Socket): Pipe {
    const deliveries: { atMs: number; data: Buffer }[] = [];
    let queuedBytes = 0;
    let inFlightBytes = 0;
    let lastDeliveryMs = 0;
    let sourceEnded = false;
    let timer: NodeJS.Timeout | undefined;
    const resumeIfRoom = (): void => {
      if (source.isPaused() && queuedBytes <= queueBytes && inFlightBytes <= inFlightLimitBytes && !dest.writableNeedDrain) source.resume();
    };
    const pipe: Pipe = {
      transmitted(data, endMs) {
        queuedBytes -= data.length;
        inFlightBytes += data.length;
        const { rttMs, jitterMs, lossRate, lossDelayMs } = conditions;
        let delayMs = Math.max(0, rttMs / 2 + (jitterMs > 0 ? (2 * random() - 1) * jitterMs : 0));
        if (lossRate > 0 && random() < lossRate) delayMs += lossDelayMs;
        lastDeliveryMs = Math.max(endMs + delayMs, lastDeliveryMs);
        deliveries.push({ atMs: lastDeliveryMs, data });
        if (deliveries.length === 1) pipe.flush();
      },
      flush() {
        clearTimeout(timer);
        timer = undefined;
        const t = now();
        const upAtMs = linkUpFrom(t);
        if (upAtMs > t) {
          if (upAtMs !== Infinity) timer = setTimeout(pipe.flush, upAtMs - t);
          return;
        }
        while (deliveries.length > 0 && deliveries[0]!.atMs <= t) {
          const { data } = deliveries.shift()!;
          inFlightBytes -= data.length;
          if (dest.destroyed) continue;
          dest.write(data);
          if (direction === 'uplink') counters.uplinkBytes += data.length;
          else counters.downlinkBytes += data.length;
        }
        if (deliveries.length > 0) timer = setTimeout(pipe.flush, deliveries[0]!.atMs - t);
        else if (sourceEnded && queuedBytes === 0 && !dest.destroyed && !dest.writableEnded) dest.end();
        resumeIfRoom();
      },
      stop: () => clearTimeout(timer),
    };
    source.on('data', (data: Buffer) => {
      queuedBytes += data.length;
      for (let offset = 0; offset < data.length; offset += sliceBytes) {
        bottlenecks[direction].enqueue({ pipe, data: data.subarray(offset, offset + sliceBytes), arrivedMs: now() });
      }
      if (queuedBytes > queueBytes || inFlightBytes > inFlightLimitBytes) source.pause();
    });
    source.on('end', () => {
      sourceEnded = true;
      pipe.flush();
    });
    dest.on('drain', resumeIfRoom);
    return pipe;
  }

  function resetConnection(connection: { client: net.Socket; upstream: net.Socket }): void {
    counters.connectionsReset++;
    connection.client.resetAndDestroy();
    connection.upstream.resetAndDestroy();
  }

  function setOutages(windows: readonly OutageWindow[], t: number): void {
    for (const timer of outageTimers) clearTimeout(timer);
    outageTimers.clear();
    outageWindows = windows.map((w) => ({ startMs: t + w.startS * 1000, endMs: w.endS === undefined ? Infinity : t + w.endS * 1000 }));
    for (const w of outageWindows) {
      const timer = setTimeout(() => {
        outageTimers.delete(timer);
        if (conditions.outageMode === 'reset') for (const connection of connections) resetConnection(connection);
      }, w.startMs - t);
      outageTimers.add(timer);
    }
  }

  function setConditions(partial: Partial<LinkConditions>): void {
    const defined = Object.fromEntries(Object.entries(partial).filter(([, value]) => value !== undefined)) as Partial<LinkConditions>;
    const next = { ...conditions, ...defined };
    checkConditions(next);
    conditions = next;
    const t = now();
    if (defined.uplink !== undefined) traceEpochMs.uplink = t;
    if (defined.downlink !== undefined) traceEpochMs.downlink = t;
    if (defined.outages) setOutages(defined.outages, t);
    bottlenecks.uplink.reschedule();
    bottlenecks.downlink.reschedule();
    for (const connection of connections) for (const pipe of connection.pipes) pipe.flush();
  }

  setConditions(initial);

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    counters.connectionsAccepted++;
    if (conditions.outageMode !== 'stall' && linkUpFrom(now()) > now()) {
      counters.connectionsRefused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true, noDelay: true });
    const connection = { client, upstream, pipes: [createPipe('uplink', client, upstream), createPipe('downlink', upstream, client)] };
    connections.add(connection);
    let closed = 0;
    for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
      socket.on('error', () => {});
      socket.on('close', (hadError) => {
        // A reset or failure on one side reaches the other as a reset; a clean close
        // leaves the other side to finish delivering what is still on the way.
        if (hadError && !other.destroyed) other.resetAndDestroy();
        if (++closed === 2) {
          connections.delete(connection);
          for (const pipe of connection.pipes) pipe.stop();
        }
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    address: `127.0.0.1:${port}`,
    setConditions,
    stats: () => ({ ...counters, connectionsOpen: connections.size }),
    close: async () => {
      for (const timer of outageTimers) clearTimeout(timer);
      bottlenecks.uplink.stop();
      bottlenecks.downlink.stop();
      for (const connection of connections) {
        for (const pipe of connection.pipes) pipe.stop();
        connection.client.destroy();
        connection.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
