#!/usr/bin/env node
/**
 * The `splitinfer` command. Subcommands live with their tier (cloud/, edge/,
 * the model toolchain in models/) and are loaded by path on demand, so
 * shared/ never imports a tier and a cloud host never loads edge code.
 */
const commands: Record<string, { module: string; summary: string }> = {
  cloud: { module: '../cloud/command.js', summary: 'run the cloud tier: KServe v2 gRPC inference server' },
  edge: { module: '../edge/command.js', summary: 'run the device agent: MQTT requests in, local or cloud inference, answers out' },
  demo: { module: '../edge/demo-command.js', summary: 'start a broker, the cloud tier and an agent on loopback and send real requests' },
  doctor: { module: '../edge/doctor-command.js', summary: 'check the runtime, this device, the broker and the cloud tier' },
  model: { module: '../models/toolchain/command.js', summary: 'inspect, quantize, prune and evaluate ONNX models' },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: splitinfer <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun splitinfer <command> --help for its options.`;
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || name === 'help') {
  console.log(usage());
  process.exit(name ? 0 : 2);
}
const command = commands[name];
if (!command) {
  console.error(`splitinfer: unknown command '${name}'\n\n${usage()}`);
  process.exit(2);
}
const mod = (await import(command.module)) as { main(args: string[]): Promise<number | void> };
try {
  const code = await mod.main(args);
  if (typeof code === 'number') process.exitCode = code;
} catch (err) {
  console.error(`splitinfer ${name}: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
