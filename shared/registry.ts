/**
 * Pluggable parts by name (model handlers, placement strategies, model
 * evaluators): each part's own module registers it, so adding one never
 * touches a central switch (as grpc-js registers resolvers and balancers).
 */
export interface RegistryOptions {
  /** What an entry is, for messages: 'model handler', 'placement strategy'. */
  kind: string;
  /** What to do when a name is unknown, appended to the error. */
  hint?: string;
  /** The error type for an unknown name, when its callers expect one (a tool's usage error). */
  unknownError?: new (message: string) => Error;
}

export class Registry<T> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly options: RegistryOptions) {}

  register(name: string, entry: T): void {
    if (this.entries.has(name)) throw new Error(`${this.options.kind} '${name}' is registered twice`);
    this.entries.set(name, entry);
  }

  /** The entry registered as `name`; an unknown name throws, listing what is registered. */
  get(name: string): T {
    const entry = this.entries.get(name);
    if (entry !== undefined) return entry;
    const { kind, hint, unknownError = Error } = this.options;
    throw new unknownError(`unknown ${kind} '${name}' (registered: ${this.names().join(', ') || 'none'})${hint ? ` — ${hint}` : ''}`);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }
}
