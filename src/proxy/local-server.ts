/** Listening helpers shared by the proxy's listeners and its own HTTP endpoints. */
import type http from 'node:http';
import type { AddressInfo, Server } from 'node:net';

/** Binds `server`; rejects with the bind error (EADDRINUSE, ...) instead of emitting it. */
export function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.removeListener('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export function boundAddress(server: Server): AddressInfo | undefined {
  return (server.address() as AddressInfo | null) ?? undefined;
}

/** The lifecycle the proxy's own HTTP endpoints share (admin port, metrics ports). */
export abstract class LocalHttpServer {
  protected abstract readonly server: http.Server;

  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    return listenOn(this.server, host, port);
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
