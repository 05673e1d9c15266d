/**
 * Envoy's fault filter (envoy.filters.http.fault) as Istio configures it per route
 * (`Route.perFilterConfig[HTTP_FILTERS.fault]`, a FaultInjection): the delay is drawn first,
 * then the abort; either one turns off retries and the route timeout for the request
 * (DESIGN.md behaviour 6). Chance comes from the proxy's injected random source, the delay
 * from its clock.
 */
import { HTTP_FILTERS, type FaultInjection } from '../../../../api/proxy-config.js';
import { ResponseFlag } from '../../../../api/response-flags.js';
import type { TimerHandle } from '../../../../core/clock.js';
import { FilterStatus, throwProblems, type CompiledHttpFilter, type FilterStream, type HttpFilter, type HttpFilterFactory } from '../../filter-api.js';

const NAME = HTTP_FILTERS.fault;

class FaultInstance implements HttpFilter {
  private timer: TimerHandle | undefined;
  private stream!: FilterStream;

  constructor(private readonly fault: FaultInjection) {}

  decodeHeaders(stream: FilterStream): FilterStatus {
    this.stream = stream;
    const fault = this.fault;
    const rt = stream.runtime;
    const delay = fault.delay && fault.delay.percentage > 0 && rt.random.next() * 100 < fault.delay.percentage ? fault.delay.fixedDelayMs : -1;
    if (delay < 0) return this.abort() ? FilterStatus.Stop : FilterStatus.Continue;
    stream.faultInjected = true;
    stream.addFlag(ResponseFlag.DelayInjected);
    rt.stats.inc('fault_delays_injected');
    this.timer = rt.clock.setTimeout(this.afterDelay, delay);
    return FilterStatus.Stop;
  }

  private afterDelay = (): void => {
    this.timer = undefined;
    if (this.stream.finished) return;
    if (!this.abort()) this.stream.continueDecoding();
  };

  /** Draws the abort; true when it answered the request. */
  private abort(): boolean {
    const a = this.fault.abort;
    const stream = this.stream;
    if (!a || a.percentage <= 0 || stream.runtime.random.next() * 100 >= a.percentage) return false;
    stream.faultInjected = true;
    stream.runtime.stats.inc('fault_aborts_injected');
    if (a.grpcStatus !== undefined) {
      // A gRPC abort is always a trailers-only gRPC answer (HTTP 200 + grpc-status).
      stream.addFlag(ResponseFlag.FaultInjected);
      stream.localReply({ status: 200, flag: ResponseFlag.FaultInjected, details: 'fault_filter_abort', body: 'fault filter abort', grpcStatus: a.grpcStatus });
    } else {
      stream.localReply({ status: a.httpStatus ?? 503, flag: ResponseFlag.FaultInjected, details: 'fault_filter_abort', body: 'fault filter abort' });
    }
    return true;
  }

  onReset(): void {
    if (this.timer !== undefined) this.stream.runtime.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

const faultFilter: CompiledHttpFilter = {
  name: NAME,
  create(stream: FilterStream): HttpFilter | undefined {
    const fault = stream.route?.perFilterConfig?.get(NAME) as FaultInjection | undefined;
    return fault === undefined ? undefined : new FaultInstance(fault);
  },
};

export const faultFactory: HttpFilterFactory = {
  name: NAME,
  compile(): CompiledHttpFilter {
    return faultFilter;
  },
  compilePerRoute(config: unknown, path: string): FaultInjection {
    const f = config as FaultInjection;
    const problems: [string, string][] = [];
    if (typeof f !== 'object' || f === null) throwProblems([[path, 'a fault needs delay or abort']]);
    const pct = (v: number, p: string) => {
      if (!(v >= 0 && v <= 100)) problems.push([p, `${v} is not in 0..100`]);
    };
    if (f.delay) {
      pct(f.delay.percentage, `${path}.delay.percentage`);
      if (!(f.delay.fixedDelayMs >= 0)) problems.push([`${path}.delay.fixedDelayMs`, 'must be >= 0']);
    }
    if (f.abort) {
      pct(f.abort.percentage, `${path}.abort.percentage`);
      if (f.abort.httpStatus === undefined && f.abort.grpcStatus === undefined) problems.push([`${path}.abort`, 'needs httpStatus or grpcStatus']);
      if (f.abort.httpStatus !== undefined && !(f.abort.httpStatus >= 200 && f.abort.httpStatus <= 599)) problems.push([`${path}.abort.httpStatus`, `${f.abort.httpStatus} is not in 200..599`]);
    }
    throwProblems(problems);
    return f;
  },
};
