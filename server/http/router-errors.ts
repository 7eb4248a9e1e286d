// Errors the router raises before any route runs, shaped like every other error
// ({error: {message, type, param, code}}): a URL that does not decode, a path parameter
// over the length limit, and a known path asked for with the wrong method (405 with an
// Allow header, instead of a 404 that suggests the path does not exist).

import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { ApiError } from './errors.js';
import { shortKey } from './excerpt.js';

/** Fastify's frameworkErrors option. */
export function frameworkErrors(err: Error & { code?: string }, _req: FastifyRequest, reply: FastifyReply): void {
  let api: ApiError;
  if (err.code === 'FST_ERR_BAD_URL') api = new ApiError(400, 'The request URL is not valid (bad percent-encoding).', { code: 'invalid_url' });
  else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') api = new ApiError(414, 'A path parameter in the request URL is too long.', { code: 'uri_too_long' });
  else api = new ApiError(400, 'The request could not be routed.', { code: 'bad_request' });
  reply.code(api.status).send(api.body());
}

/** Remembers each route's path pattern and methods, to tell 405 from 404. */
export class KnownRoutes {
  private readonly routes: { re: RegExp; methods: Set<string> }[] = [];

  /** Call before the routes are registered (onRoute only sees routes added later). */
  track(app: FastifyInstance): void {
    app.addHook('onRoute', (r: RouteOptions) => {
      // A wildcard (CORS's OPTIONS '*' among them) matches paths its pattern does not spell.
      if (r.url.includes('*')) return;
      const src = r.url.split('/').map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
      const re = new RegExp(`^${src}/?$`);
      let entry = this.routes.find((e) => e.re.source === re.source);
      if (!entry) this.routes.push((entry = { re, methods: new Set() }));
      for (const m of Array.isArray(r.method) ? r.method : [r.method]) entry.methods.add(m.toUpperCase());
    });
  }

  /** The methods a path allows, or null when no route has that path. */
  allowed(path: string): string[] | null {
    const e = this.routes.find((x) => x.re.test(path));
    return e ? [...e.methods].sort() : null;
  }
}

/** The 404 handler: 405 for a known path with another method. */
export function notFound(known: KnownRoutes) {
  return (req: FastifyRequest, reply: FastifyReply): void => {
    const path = req.url.split('?')[0];
    const allowed = known.allowed(path);
    if (allowed && !allowed.includes(req.method)) {
      const api = new ApiError(405, `Method ${req.method} is not allowed on ${shortKey(path)}; use ${allowed.join(' or ')}.`, { code: 'method_not_allowed' });
      reply.code(405).header('allow', allowed.join(', ')).send(api.body());
      return;
    }
    const api = new ApiError(404, `Unknown request URL: ${req.method} ${shortKey(path)}`, { code: 'unknown_url' });
    reply.code(404).send(api.body());
  };
}
