/**
 * prom-client's Registry, Counter and Gauge, loaded without the package's index.
 *
 * `require('prom-client')` also loads what a proxy never uses: the default process metrics
 * (which pull in @opentelemetry/api), the Pushgateway client (http, https, zlib), cluster
 * aggregation (node:cluster) and Summary (tdigest). Measured in a bare node process, the index
 * costs ~11 MB of RSS and these three modules ~0.4 MB. Every sidecar would pay it, out of a
 * budget of 60 MB for a whole proxy (what Istio's sidecar uses). The classes are the package's own (the same module
 * files the index re-exports, so `instanceof` and the global registry agree); the types are
 * the package's public ones. test/telemetry/metrics.test.ts checks they are the index's exports.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
