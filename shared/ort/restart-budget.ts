/**
 * How soon a crashed runtime worker may start again: at once-ish at first,
 * doubling while crashes repeat, and at most `maxRestarts` in any `windowMs`
 * (a model that crashes on load or on every run must not spin a core
 * restarting it). Past the budget the next start waits until the oldest
 * restart leaves the window, so the model comes back by itself once the
 * cause has passed.
 */
export interface RestartBudgetOptions {
  maxRestarts: number;
  windowMs: number;
  firstDelayMs: number;
}

export const defaultRestartBudget: RestartBudgetOptions = { maxRestarts: 5, windowMs: 60_000, firstDelayMs: 100 };

export class RestartBudget {
  private restarts: number[] = [];

  constructor(private readonly options: RestartBudgetOptions = defaultRestartBudget) {}

  /** Records a restart due now and says how long to wait before it; `spent` when the window's budget forced the wait. */
  next(now = performance.now()): { delayMs: number; spent: boolean } {
    const { maxRestarts, windowMs, firstDelayMs } = this.options;
    this.restarts = this.restarts.filter((at) => at > now - windowMs);
    const recent = this.restarts.length;
    const delayMs = recent < maxRestarts ? firstDelayMs * 2 ** recent : this.restarts[recent - maxRestarts]! + windowMs - now;
    this.restarts.push(now + delayMs);
    return { delayMs, spent: recent >= maxRestarts };
  }
}
