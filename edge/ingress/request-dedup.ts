/**
 * The request ids seen most recently, so a QoS 1 request the broker delivers
 * again (after a lost PUBACK or a reconnect) is answered once. Bounded: the
 * least recently seen id is forgotten when the window is full.
 */
export class RecentRequestIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** Records `key`; false when it was already there (a redelivery). */
  add(key: string): boolean {
    if (this.ids.delete(key)) {
      // Seen again: move it to the newest end, so ids still being redelivered are kept longest.
      this.ids.add(key);
      return false;
    }
    this.ids.add(key);
    // A Set iterates in insertion order, so the first entry is the oldest.
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value!);
    return true;
  }

  /** Drops `key`, for a request that was refused before it ran (a retry must run). */
  forget(key: string): void {
    this.ids.delete(key);
  }
}
