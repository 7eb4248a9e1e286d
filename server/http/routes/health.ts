// GET /health: 503 while the model loads (or failed to, or the server drains), 200 when
// generation requests can be served. Public even when API keys are set.

import type { FastifyInstance } from 'fastify';

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/health', async (_req, reply) => {
    const s = app.relu;
    if (s.draining) return reply.code(503).send({ status: 'draining' });
    // Public even with API keys: the load error's detail (file paths, the file's first
    // bytes) stays in the log; the model's own fault (its file changed) is a fixed text.
    if (s.loadError) return reply.code(503).send({ status: 'error', error: 'the model failed to load; see the server log' });
    if (!s.runtime || !s.loop) return reply.code(503).header('retry-after', '2').send({ status: 'loading' });
    const fault = s.runtime.fault?.();
    if (fault) return reply.code(503).send({ status: 'error', error: fault });
    const st = s.loop.stats();
    return { status: 'ok', model: s.runtime.id, slots_total: st.slotsTotal, slots_idle: st.slotsTotal - st.slotsBusy, requests_waiting: st.waiting };
  });
}
