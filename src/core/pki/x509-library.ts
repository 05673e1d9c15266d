/**
 * @peculiar/x509, set up once: it builds certificates and PKCS#10 requests on WebCrypto
 * (node can parse certificates but not create them). Only the CA and the proxy's key and CSR
 * generation load this module; reading certificates needs nothing but node:crypto
 * (certificate-info.ts), so a proxy without mesh certificates never pays for it.
 */
// tsyringe, which @peculiar/x509 uses inside, needs the Reflect metadata API installed first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509, webcrypto };
