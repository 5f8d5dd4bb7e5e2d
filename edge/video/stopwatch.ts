/**
 * Milliseconds spent in a stretch of code that is interrupted by awaits:
 * started and stopped around each synchronous part, so the time other work
 * takes while it waits is not counted. The video runner keeps one to report
 * its own cost per chunk (`VideoCounts.orchestrationMs`), apart from decode,
 * the models and the link.
 */
export class Stopwatch {
  totalMs = 0;
  private since: number | undefined;

  start(): void {
    this.since ??= performance.now();
  }

  stop(): void {
    if (this.since === undefined) return;
    this.totalMs += performance.now() - this.since;
    this.since = undefined;
  }

  /** Runs `work` with the watch running (it is stopped afterwards even if it was running before). */
  time<T>(work: () => T): T {
    this.start();
    try {
      return work();
    } finally {
      this.stop();
    }
  }
}
