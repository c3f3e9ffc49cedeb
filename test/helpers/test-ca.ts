/** A throw-away internal CA and a server certificate for 127.0.0.1 signed by it (made with the openssl command). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The PEM files of a test CA and of one server certificate it signed. */
export interface TestCa {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Removes the files. */
  remove(): void;
}

/** Makes a CA and a certificate for IP 127.0.0.1 in a new temp dir readable by servers that drop root. */
export function makeTestCa(): TestCa {
  const dir = fs.mkdtempSync('/tmp/skadi-ca-');
  fs.chmodSync(dir, 0o755);
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Skadi Test Internal CA',
  );
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  fs.writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
  for (const name of ['ca.pem', 'server.pem', 'server.key']) fs.chmodSync(file(name), 0o644);
  return {
    dir,
    caFile: file('ca.pem'),
    certFile: file('server.pem'),
    keyFile: file('server.key'),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
