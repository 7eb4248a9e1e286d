// POST /tokenize and /detokenize with llama.cpp server shapes, so tools written for it
// work: {"content", "add_special", "with_pieces"} -> {"tokens"}, {"tokens"} -> {"content"}.
// with_pieces gives [{id, piece}], the piece as a string when its bytes are valid UTF-8
// and as the byte values otherwise (a byte-fallback token holding part of a character).

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

import type { FastifyInstance } from 'fastify';
import { ApiError, invalidField } from '../errors.js';
import { requireReady } from '../state.js';
import { excerpt } from '../excerpt.js';
import { textPrompt } from '../prompt.js';

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
    const withPieces = b.with_pieces ?? false;
    if (typeof withPieces !== 'boolean') throw invalidField('with_pieces', `'with_pieces' must be a boolean.`, 'invalid_type');
    const tok = runtime.tokenizer;
    // Off the event loop: content may be a whole request body (1 MiB took 1.7 s inline).
    const ids = await textPrompt(runtime, b.content, addSpecial && tok.addBos, 'content', null);
    if (!withPieces) return { tokens: ids };
    return {
      tokens: ids.map((id) => {
        const bytes = tok.tokenBytes(id);
        try {
          return { id, piece: strictUtf8.decode(bytes) };
        } catch {
          return { id, piece: Array.from(bytes) };
        }
      }),
    };
  });
  app.post('/detokenize', async (req) => {
    const { runtime } = requireReady(app.relu);
    const b = body(req.body);
    const t = b.tokens;
    if (!Array.isArray(t)) throw invalidField('tokens', `'tokens' must be an array of token ids.`, 'invalid_type');
    const nVocab = runtime.tokenizer.nVocab;
    t.forEach((id, i) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= nVocab) {
        throw invalidField(`tokens[${i}]`, `'tokens[${i}]' must be a token id in [0, ${nVocab}), got ${excerpt(id)}.`);
      }
    });
    return { content: runtime.tokenizer.decode(t as number[]) };
  });
}
