// GET /metrics in the Prometheus text format.

import type { FastifyInstance } from 'fastify';

export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    const reg = app.relu.metrics.registry;
    reply.header('content-type', reg.contentType);
    return reg.metrics();
  });
}
