/**
 * @peculiar/x509 on node's WebCrypto, for the webhooks' serving certificate that `sinew install`
 * makes (node can parse certificates but not create them). The CA (src/ca) sets the library
 * up the same way; src/kube may not import it.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509, webcrypto };
