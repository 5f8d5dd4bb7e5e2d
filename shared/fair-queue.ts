/**
 * The waiting line of a RunQueue: strict priority levels (1 first, as
 * Triton's `priority_levels`), and within a level weighted deficit round
 * robin across tenants (Shreedhar & Varghese, 1995, with one request as the
 * unit of cost): each tenant's turn grants it `weight` requests' worth of
 * credit, so over time tenants with work waiting are served in proportion to
 * their weights however many requests each has queued. One tenant alone
 * (the edge, or a cloud without tenants) is served in arrival order.
 */
export interface FairEntry {
  tenant: string;
  /** 1 is served first; the queue does not interpret the range. */
  priority: number;
}

interface TenantLine<T> {
  items: T[];
  /** Requests this tenant may still take in its current turn. */
  deficit: number;
  /** Whether its current turn has granted its weight yet. */
  granted: boolean;
}

interface Level<T> {
  /** Tenants with items at this level, in round-robin order; the first has the turn. */
  order: string[];
  lines: Map<string, TenantLine<T>>;
}

export class FairQueue<T extends FairEntry> {
  private readonly levels = new Map<number, Level<T>>();
  private readonly counts = new Map<string, number>();
  private total = 0;

  /** `weightOf` must be > 0: a tenant's share against the others' at the same level. */
  constructor(private readonly weightOf: (tenant: string) => number = () => 1) {}

  get size(): number {
    return this.total;
  }

  /** Items of one tenant, every level. */
  sizeOf(tenant: string): number {
    return this.counts.get(tenant) ?? 0;
  }

  push(item: T): void {
    let level = this.levels.get(item.priority);
    if (!level) this.levels.set(item.priority, (level = { order: [], lines: new Map() }));
    let line = level.lines.get(item.tenant);
    if (!line) {
      level.lines.set(item.tenant, (line = { items: [], deficit: 0, granted: false }));
      level.order.push(item.tenant);
    }
    line.items.push(item);
    this.counts.set(item.tenant, this.sizeOf(item.tenant) + 1);
    this.total++;
  }

  /** The next item to serve, or undefined when empty. */
  shift(): T | undefined {
    const priority = Math.min(...this.levels.keys());
    const level = this.levels.get(priority);
    if (!level) return undefined;
    for (;;) {
      const tenant = level.order[0]!;
      const line = level.lines.get(tenant)!;
      if (!line.granted) {
        line.deficit += this.weightOf(tenant);
        line.granted = true;
      }
      if (line.deficit >= 1) {
        line.deficit--;
        const item = line.items[0]!;
        this.drop(priority, level, tenant, line, 0);
        return item;
      }
      // Turn over: credit below one request carries to its next turn.
      line.granted = false;
      level.order.push(level.order.shift()!);
    }
  }

  /** Takes `item` out wherever it waits (its deadline passed); false when it is not here. */
  remove(item: T): boolean {
    const level = this.levels.get(item.priority);
    const line = level?.lines.get(item.tenant);
    const index = line?.items.indexOf(item) ?? -1;
    if (index < 0) return false;
    this.drop(item.priority, level!, item.tenant, line!, index);
    return true;
  }

  /** Every item, emptying the queue. */
  drain(): T[] {
    const all = [...this.levels.values()].flatMap((level) => [...level.lines.values()].flatMap((line) => line.items));
    this.levels.clear();
    this.counts.clear();
    this.total = 0;
    return all;
  }

  /**
   * The item to give up so that `tenant` gets a place in a full queue: the
   * newest of the tenant with the most waiting, when that is another tenant
   * with more waiting than `tenant` has (so a flood displaces only itself).
   */
  displaceableFor(tenant: string): T | undefined {
    let longest: string | undefined;
    for (const [name, count] of this.counts) if (longest === undefined || count > this.sizeOf(longest)) longest = name;
    if (longest === undefined || longest === tenant || this.sizeOf(longest) <= this.sizeOf(tenant) + 1) return undefined;
    // Its newest item waits at its lowest-priority level (largest number), last in line.
    const levels = [...this.levels.entries()].filter(([, level]) => level.lines.has(longest)).sort(([a], [b]) => b - a);
    return levels[0]?.[1].lines.get(longest)?.items.at(-1);
  }

  private drop(priority: number, level: Level<T>, tenant: string, line: TenantLine<T>, index: number): void {
    line.items.splice(index, 1);
    this.total--;
    const left = this.sizeOf(tenant) - 1;
    if (left > 0) this.counts.set(tenant, left);
    else this.counts.delete(tenant);
    if (line.items.length > 0) return;
    // An emptied tenant leaves the round (its credit with it, as DRR does); an emptied level goes.
    level.lines.delete(tenant);
    level.order.splice(level.order.indexOf(tenant), 1);
    if (level.order.length === 0) this.levels.delete(priority);
  }
}
