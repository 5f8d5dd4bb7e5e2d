/**
 * Test certificates made with openssl at test time into a temp folder (no
 * private key is committed): a CA, a server certificate for 127.0.0.1 and
 * localhost, a client certificate, and a second, unrelated CA to prove that
 * verification really happens.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findProgram } from './mqtt.js';

export const opensslMissing: string | undefined = findProgram('openssl') ? undefined : 'openssl is not installed (apt-get install openssl)';

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Signed by `ca`, subject CN `clientName`. */
  clientCert: string;
  clientKey: string;
  clientName: string;
  /** A CA that signed nothing here. */
  otherCa: string;
  remove(): void;
}

export function makeTestPki(clientName = 'cam-7'): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'splitinfer-pki-'));
  const at = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const makeCa = (name: string) => openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`);
  makeCa('ca');
  makeCa('other-ca');
  const issue = (name: string, subject: string, extensions: string) => {
    writeFileSync(at(`${name}.ext`), extensions);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  };
  issue('server', '/CN=splitinfer-cloud', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('client', `/CN=${clientName}`, 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: at('ca.crt'),
    serverCert: at('server.crt'),
    serverKey: at('server.key'),
    clientCert: at('client.crt'),
    clientKey: at('client.key'),
    clientName,
    otherCa: at('other-ca.crt'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
