/**
 * Shared helpers for the push-protocol tests: configs, nodes, and event waits (the tests
 * wait on events, never on time passing).
 */
import type { EventEmitter } from 'node:events';
import net from 'node:net';
import type { ProxyConfig, ProxyNode } from '../../src/api/proxy-config.js';

/** A sidecar node for workload `name`, with extra labels. */
export function nodeFor(name: string, labels: Record<string, string> = {}, namespace = 'default'): ProxyNode {
  return { id: `sidecar~${name}.${namespace}`, mode: 'sidecar', workload: name, namespace, labels: { app: name, ...labels } };
}

/** A small config whose content is told apart by `tag` (one route table named after it). */
export function configFor(node: ProxyNode, tag: string): ProxyConfig {
  return {
    version: `compiled-${tag}`,
    node,
    listeners: [],
    routeConfigs: [{ name: tag, virtualHosts: [] }],
    clusters: [],
    endpoints: [],
  };
}

/** The tag configFor put in a config. */
export function tagOf(config: ProxyConfig | undefined): string | undefined {
  return config?.routeConfigs[0]?.name;
}

/** Resolves with the arguments of the first `event` whose arguments satisfy `predicate`. */
export function waitFor(emitter: EventEmitter<any>, event: string, predicate: (...args: any[]) => boolean = () => true): Promise<any[]> {
  return new Promise((resolve) => {
    const listener = (...args: any[]) => {
      if (!predicate(...args)) return;
      emitter.off(event, listener);
      resolve(args);
    };
    emitter.on(event, listener);
  });
}

/** Resolves once `event` has fired `count` times (counting only those satisfying `predicate`). */
export function waitForCount(emitter: EventEmitter<any>, event: string, count: number, predicate: (...args: any[]) => boolean = () => true): Promise<void> {
  return new Promise((resolve) => {
    if (count <= 0) return resolve();
    let seen = 0;
    const listener = (...args: any[]) => {
      if (!predicate(...args)) return;
      if (++seen < count) return;
      emitter.off(event, listener);
      resolve();
    };
    emitter.on(event, listener);
  });
}

/** A raw TCP peer that records every frame it receives, for speaking bad protocol on purpose. */
export class RawPeer {
  readonly socket: net.Socket;
  readonly frames: Record<string, unknown>[] = [];
  private buffered = '';
  private readonly taken = new Set<Record<string, unknown>>();
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (data: string) => {
      this.buffered += data;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) !== -1) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.frames.push(JSON.parse(line) as Record<string, unknown>);
        socket.emit('frame', this.frames[this.frames.length - 1]);
      }
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Wraps an accepted socket (a fake control plane's side). */
  static wrap(socket: net.Socket): RawPeer {
    return new RawPeer(socket);
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawPeer(socket));
      });
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The first frame of `type` not yet taken by `frame()` (waits for it if need be). */
  frame(type: string): Promise<Record<string, unknown>> {
    const have = this.frames.find((f) => f.type === type && !this.taken.has(f));
    if (have) {
      this.taken.add(have);
      return Promise.resolve(have);
    }
    return new Promise((resolve) => {
      const listener = (f: Record<string, unknown>) => {
        if (f.type !== type || this.taken.has(f)) return;
        this.taken.add(f);
        this.socket.off('frame', listener);
        resolve(f);
      };
      this.socket.on('frame', listener);
    });
  }

  destroy(): Promise<void> {
    this.socket.destroy();
    return this.closed;
  }
}
