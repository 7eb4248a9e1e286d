// GET /v1/models and /v1/models/{id}: the one loaded model, OpenAI's shape plus a
// `meta` object with the context size and model facts (as llama.cpp's server does).

import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import { requireReady } from '../state.js';
import { excerpt } from '../excerpt.js';
import type { ModelRuntime } from '../../scheduler/runtime.js';

function describeModel(rt: ModelRuntime) {
  return {
    id: rt.id,
    object: 'model' as const,
    created: rt.created,
    owned_by: 'relu-serve',
    context_length: rt.nCtx,
    meta: { n_ctx: rt.nCtx, n_parallel: rt.nSeq, n_vocab: rt.tokenizer.nVocab, ...rt.meta },
  };
}

export async function modelRoutes(app: FastifyInstance): Promise<void> {
  app.get('/v1/models', async () => {
    const { runtime } = requireReady(app.relu);
    return { object: 'list', data: [describeModel(runtime)] };
  });
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const { runtime } = requireReady(app.relu);
    if (req.params.id !== runtime.id) {
      throw new ApiError(404, `The model ${excerpt(req.params.id)} does not exist; this server serves '${runtime.id}'.`, { param: 'model', code: 'model_not_found' });
    }
    return describeModel(runtime);
  });
}
