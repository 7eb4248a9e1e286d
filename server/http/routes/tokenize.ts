// POST /tokenize and /detokenize with llama.cpp server shapes, so tools written for it
// work: {"content", "add_special"} -> {"tokens"}, {"tokens"} -> {"content"}.

import type { FastifyInstance } from 'fastify';
import { ApiError, invalidField } from '../errors.js';
import { requireReady } from '../state.js';

function body(raw: unknown): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ApiError(400, 'The request body must be a JSON object.', { code: 'invalid_json' });
  return raw as Record<string, unknown>;
}

export async function tokenizeRoutes(app: FastifyInstance): Promise<void> {
  app.post('/tokenize', async (req) => {
    const { runtime } = requireReady(app.relu);
    const b = body(req.body);
    if (typeof b.content !== 'string') throw invalidField('content', `'content' must be a string.`, 'invalid_type');
    const addSpecial = b.add_special ?? false;
    if (typeof addSpecial !== 'boolean') throw invalidField('add_special', `'add_special' must be a boolean.`, 'invalid_type');
    return { tokens: runtime.tokenizer.encode(b.content, addSpecial && runtime.tokenizer.addBos) };
  });
  app.post('/detokenize', async (req) => {
    const { runtime } = requireReady(app.relu);
    const b = body(req.body);
    const t = b.tokens;
    if (!Array.isArray(t)) throw invalidField('tokens', `'tokens' must be an array of token ids.`, 'invalid_type');
    const nVocab = runtime.tokenizer.nVocab;
    t.forEach((id, i) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= nVocab) {
        throw invalidField(`tokens[${i}]`, `'tokens[${i}]' must be a token id in [0, ${nVocab}), got ${JSON.stringify(id)}.`);
      }
    });
    return { content: runtime.tokenizer.decode(t as number[]) };
  });
}
