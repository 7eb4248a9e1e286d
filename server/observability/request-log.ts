// One summary log line and one requests_total increment per HTTP request. Fastify's
// onResponse hook covers ordinary replies; streamed (hijacked) replies and clients that
// went away call requestDone() themselves. A WeakSet makes sure no request is counted
// twice whichever path ends it.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Metrics } from './metrics.js';

const logged = new WeakSet<FastifyRequest>();

export function routeLabel(req: FastifyRequest): string {
  return req.routeOptions?.url ?? 'unmatched';
}

export function requestDone(req: FastifyRequest, metrics: Metrics, status: number, ms: number): void {
  if (logged.has(req)) return;
  logged.add(req);
  const route = routeLabel(req);
  metrics.requests.inc({ route, method: req.method, status: String(status) });
  const line: Record<string, unknown> = {
    method: req.method,
    path: req.url.split('?')[0],
    route,
    status,
    ms: Math.round(ms * 10) / 10,
  };
  const g = req.genSummary;
  if (g) Object.assign(line, g);
  if (status >= 500) req.log.error(line, 'request done');
  else req.log.info(line, 'request done');
}

export function requestLogPlugin(metrics: Metrics) {
  const plugin = async (app: FastifyInstance) => {
    app.decorateRequest('genSummary', null);
    app.addHook('onResponse', async (req, reply) => {
      requestDone(req, metrics, reply.statusCode, reply.elapsedTime);
    });
  };
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
