/**
 * `splitinfer model <subcommand>`: the model toolchain. Each subcommand
 * lives in its own module, loaded on demand (quantizing does not load the
 * pruner), exporting `main(args)`.
 */
const subcommands: Record<string, { module: string; summary: string }> = {
  inspect: { module: './inspect-command.js', summary: 'opsets, inputs/outputs, op counts, parameters and bytes by element type' },
  quantize: { module: './quantize-command.js', summary: 'INT8 copy of a model: --mode dynamic (MatMul/Gemm/LSTM) or --mode static (QDQ, calibrated)' },
  prune: { module: './prune-command.js', summary: 'remove the least salient hidden units of MatMul → Relu → MatMul chains' },
  eval: { module: './eval-command.js', summary: 'quality of a catalog variant against its reference (fp32) on a data set' },
};

function usage(): string {
  const lines = Object.entries(subcommands).map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`);
  return `usage: splitinfer model <subcommand> [options]\n\nsubcommands:\n${lines.join('\n')}\n\nRun splitinfer model <subcommand> --help for its options.`;
}

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const subcommand = subcommands[name];
  if (!subcommand) {
    console.error(`splitinfer model: unknown subcommand '${name}'\n\n${usage()}`);
    return 2;
  }
  const mod = (await import(subcommand.module)) as { main(args: string[]): Promise<number> };
  return mod.main(rest);
}
