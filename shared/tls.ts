/**
 * TLS material and the loopback rule both tiers follow: plaintext gRPC is the
 * default only where traffic never leaves the machine; anything else needs
 * certificates or an explicit `insecure: true`.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** A PEM file named in config; `setting` names the config key or flag in the error. */
export function readPemFile(file: string, setting: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new Error(`${setting}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} — check the path and that this user may read it`, { cause: err });
  }
  if (!pem.includes('-----BEGIN ')) throw new Error(`${setting}: ${file} is not PEM (no -----BEGIN line) — convert it with openssl x509 -outform PEM`);
  return pem;
}

const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** The host of a listen address or gRPC target: `host:port`, `[v6]:port`, a bare host, `dns:///host:port`, `ipv4:a.b.c.d:port`. */
export function hostOf(target: string): string {
  const withoutScheme = target.replace(/^(dns|ipv4|ipv6):(\/\/[^/]*\/)?/, '');
  if (withoutScheme.startsWith('[')) return withoutScheme.slice(1, withoutScheme.indexOf(']'));
  // A bare IPv6 address has several colons and no port.
  if (net.isIPv6(withoutScheme)) return withoutScheme;
  const colon = withoutScheme.lastIndexOf(':');
  return colon < 0 ? withoutScheme : withoutScheme.slice(0, colon);
}

/** Whether traffic to (or a server on) `target` stays on this machine; unix sockets do, an `ipv4:`/`ipv6:` list when every address does. */
export function isLoopback(target: string): boolean {
  if (target.startsWith('unix:')) return true;
  const list = /^(ipv4|ipv6):(.*,.*)$/.exec(target);
  if (list) return list[2]!.split(',').every((address) => isLoopback(`${list[1]}:${address}`));
  const host = hostOf(target).toLowerCase();
  if (host === 'localhost') return true;
  const family = net.isIP(host);
  return family !== 0 && loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}
