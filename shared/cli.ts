#!/usr/bin/env node
/**
 * The `splitinfer` command. Subcommands live with their tier (cloud/, edge/,
 * the model toolchain in models/) and are loaded by path on demand, so
 * shared/ never imports a tier and a cloud host never loads edge code.
 */
import { dispatch, type CommandSet } from './subcommands.js';

const at = (file: string) => new URL(file, import.meta.url);

const commands: CommandSet = {
  prefix: 'splitinfer',
  noun: 'command',
  entries: {
    cloud: { module: at('../cloud/command.js'), summary: 'run the cloud tier: KServe v2 gRPC inference server' },
    health: { module: at('../cloud/health-command.js'), summary: "ask a cloud tier's grpc.health.v1 whether it is serving (container health checks)" },
    edge: { module: at('../edge/command.js'), summary: 'run the device agent: MQTT requests in, local or cloud inference, answers out' },
    demo: { module: at('../edge/demo-command.js'), summary: 'start a broker, the cloud tier and an agent on loopback and send real requests' },
    doctor: { module: at('../edge/doctor-command.js'), summary: 'check the runtime, this device, the broker and the cloud tier' },
    bundle: { module: at('../edge/bundle/command.js'), summary: 'build the offline install bundle of the edge agent for a Linux device (arm64 or x64)' },
    model: { module: at('../models/toolchain/command.js'), summary: 'inspect, quantize, prune and evaluate ONNX models' },
  },
};

try {
  process.exitCode = await dispatch(commands, process.argv.slice(2));
} catch (err) {
  console.error(`splitinfer ${process.argv[2]}: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
