import { verifiedPath, type FileRef } from '../catalog.js';
import type { Logger } from '../log.js';
import { InferError } from '../errors.js';
import { openSession, showsWorkerOf, type OrtSession, type SessionOptions } from './session.js';

interface Entry {
  session: Promise<OrtSession>;
  holders: number;
}

/**
 * One session per graph file in a process. Models that run the same file
 * (video-encoder runs image-encoder's networks; a cloud version reloaded
 * with unchanged files) hold leases on one worker instead of each loading
 * its own copy of the weights: on the cloud, InceptionV3 once, not once per
 * model; on a device, MobileNetV2 once for images and video. The catalog
 * lets models share a graph name only for the same source and sha256, so
 * the name and digest identify the file.
 */
export class SessionShare {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly options: SessionOptions,
    private readonly log: Logger,
  ) {}

  /** Sessions open now (each holds one copy of its weights). */
  get openSessions(): number {
    return this.entries.size;
  }

  /**
   * A lease on the session of `graph` at `ref`; closing the lease lets go,
   * and the last to let go closes the session. Every lease checks the file
   * on disk against its sha256 first (verifiedPath), shared or not: a load
   * or reload fails on a corrupt or replaced file, as without sharing.
   */
  async lease(graph: string, ref: FileRef): Promise<OrtSession> {
    const file = await verifiedPath(ref);
    const key = `${graph}\0${ref.sha256}`;
    let entry = this.entries.get(key);
    if (!entry) {
      const opening: Entry = { session: openSession(graph, file, this.options, this.log), holders: 0 };
      this.entries.set(key, opening);
      // A failed open is forgotten, so the next lease tries again.
      opening.session.catch(() => this.entries.get(key) === opening && this.entries.delete(key));
      entry = opening;
    }
    const held = entry;
    held.holders++;
    let session: OrtSession;
    try {
      session = await held.session;
    } catch (err) {
      held.holders--;
      throw err;
    }
    return leaseOf(session, async () => {
      if (--held.holders > 0) return;
      if (this.entries.get(key) === held) this.entries.delete(key);
      await session.close();
    });
  }
}

/** The session seen by one holder: its own health listeners, and once closed it runs nothing, whatever the other holders do. */
function leaseOf(session: OrtSession, release: () => Promise<void>): OrtSession {
  let released = false;
  const listeners = new Set<(serving: boolean) => void>();
  const stopHearing = session.onServingChange((serving) => {
    for (const listener of listeners) listener(serving);
  });
  const closed = () => Promise.reject(new InferError('UNAVAILABLE', `model ${session.name}: session closed`));
  const lease: OrtSession = {
    name: session.name,
    provider: session.provider,
    inputs: session.inputs,
    outputs: session.outputs,
    run: (feeds) => (released ? closed() : session.run(feeds)),
    runSequence: (steps, plan) => (released ? closed() : session.runSequence(steps, plan)),
    serving: () => !released && session.serving(),
    onServingChange(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    async close() {
      if (released) return;
      released = true;
      stopHearing();
      await release();
    },
  };
  showsWorkerOf(lease, session);
  return lease;
}
