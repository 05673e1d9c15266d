/**
 * @peculiar/x509, set up once: it builds certificates and parses and verifies PKCS#10
 * requests on WebCrypto (node can parse certificates but not create them). Only the CA loads
 * it: the proxy reads certificates with node:crypto (core/pki/certificate-info.ts) and writes
 * its CSR with node:crypto too (core/pki/workload-key.ts), since this library and WebCrypto
 * add about 18 MB of RSS to a process (bench/ca.ts).
 */
// tsyringe, which @peculiar/x509 uses inside, needs the Reflect metadata API installed first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509, webcrypto };
