/**
 * A token bucket: `ratePerS` tokens a second up to `burst`, one per request.
 * A tenant may send `burst` requests at once after a quiet spell and
 * `ratePerS` on average; an empty bucket says how long until the next token,
 * which is exactly the wait after which a retry succeeds (if nothing else
 * takes it first).
 */
export interface TokenBucketOptions {
  ratePerS: number;
  burst: number;
  /** Milliseconds, as performance.now(); a fake clock in tests. */
  now?: () => number;
}

export class TokenBucket {
  private tokens: number;
  private updatedMs: number;
  private readonly now: () => number;

  constructor(private readonly options: TokenBucketOptions) {
    if (!(options.ratePerS > 0) || !(options.burst >= 1)) {
      throw new Error(`token bucket: ratePerS must be > 0 and burst >= 1, got ${options.ratePerS} and ${options.burst}`);
    }
    this.now = options.now ?? (() => performance.now());
    this.tokens = options.burst;
    this.updatedMs = this.now();
  }

  /** Takes a token: 0 when there was one, else the milliseconds until there will be one (nothing taken). */
  take(): number {
    const now = this.now();
    this.tokens = Math.min(this.options.burst, this.tokens + ((now - this.updatedMs) * this.options.ratePerS) / 1000);
    this.updatedMs = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.options.ratePerS);
  }
}
