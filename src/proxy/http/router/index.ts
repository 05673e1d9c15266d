/** The router's factory: the terminal filter of every HTTP filter chain. */
import { HTTP_FILTERS } from '../../../api/proxy-config.js';
import { FilterConfigError, type CompiledHttpFilter, type HttpFilterFactory } from '../filter-api.js';
import { Router } from './router.js';
import type { RouterStream } from './types.js';

const routerFilter: CompiledHttpFilter = {
  name: HTTP_FILTERS.router,
  // The chain hands the terminal filter the connection manager's stream, which is a RouterStream.
  create: (stream) => new Router(stream as RouterStream),
};

export const routerFactory: HttpFilterFactory = {
  name: HTTP_FILTERS.router,
  terminal: true,
  compile(config, ctx) {
    if (config !== undefined && (typeof config !== 'object' || config === null || Object.keys(config).length > 0)) {
      throw new FilterConfigError([[ctx.path, 'the router takes no config']]);
    }
    return routerFilter;
  },
};

export { DEFAULT_MAX_BUFFERED_BODY_BYTES } from './router.js';
export { chooseDestination } from './destination.js';
export { shadowHost } from './shadow.js';
