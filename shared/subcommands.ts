/**
 * Commands made of subcommands (`splitinfer <command>`, `splitinfer model
 * <subcommand>`): each lives in its own module, loaded by URL only when it
 * runs, and exports `main(args)`. One dispatcher, so both levels print usage
 * and refuse unknown names the same way.
 */
export interface Subcommand {
  /** A URL, usually `new URL('./x.js', import.meta.url)` of the registering file. */
  module: URL;
  summary: string;
}

export interface CommandSet {
  /** e.g. `splitinfer model`. */
  prefix: string;
  /** What one of them is called in usage text: command, subcommand. */
  noun: string;
  entries: Record<string, Subcommand>;
}

export function usageOf(set: CommandSet): string {
  const width = Math.max(...Object.keys(set.entries).map((name) => name.length)) + 1;
  const lines = Object.entries(set.entries).map(([name, c]) => `  ${name.padEnd(width)} ${c.summary}`);
  return `usage: ${set.prefix} <${set.noun}> [options]\n\n${set.noun}s:\n${lines.join('\n')}\n\nRun ${set.prefix} <${set.noun}> --help for its options.`;
}

/** Runs the named entry; no name or --help prints usage (exit 2 / 0), an unknown name says so (exit 2). */
export async function dispatch(set: CommandSet, args: readonly string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usageOf(set));
    return name ? 0 : 2;
  }
  const entry = set.entries[name];
  if (!entry) {
    console.error(`${set.prefix}: unknown ${set.noun} '${name}'\n\n${usageOf(set)}`);
    return 2;
  }
  const mod = (await import(entry.module.href)) as { main(args: string[]): Promise<number | void> };
  const code = await mod.main(rest);
  return typeof code === 'number' ? code : 0;
}
