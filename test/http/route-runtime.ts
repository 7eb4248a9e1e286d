// A runtime for route tests without a model (routes-*.test.ts): a real SentencePiece
// tokenizer whose vocabulary has every byte (any text encodes, and a lone byte of a
// multi-byte character is a token of its own), a real chat template, and a scripted
// sampler: the k-th sequence started picks the bytes of replies[k % replies.length] (as
// byte tokens) or its token ids, then EOS. Logits are all zero; a pick asked for logprobs reports -1 per token. While
// hold.p is set, decode waits for it (requests stay running or waiting).

import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { SpmVocab, TokenType } from '../../server/tokenizer/vocab.js';
import { adaptTokenizer } from '../../server/scheduler/tokenizer-adapter.js';
import { ChatTemplate } from '../../server/chat/template.js';
import type { ModelRuntime, PickerOptions } from '../../server/scheduler/runtime.js';
import type { DecodeBatch } from '../../server/engine/types.js';
import { buildApp, type App } from '../../server/app.js';
import assert from 'node:assert/strict';

const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
// Ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 the bytes, then a few whole pieces.
export const PIECES = ['\u2581', '\u2581hi', 'hi'];
const tokens = ['<unk>', '<s>', '</s>', ...bytes, ...PIECES];
const types = [TokenType.unknown, TokenType.control, TokenType.control, ...bytes.map(() => TokenType.byte), ...PIECES.map(() => TokenType.normal)];
export const tok = adaptTokenizer(new SpmTokenizer(new SpmVocab({ tokens, types, scores: tokens.map(() => 0) })), new Map());
export const EOS = 2;
export const BYTE0 = 3;
/** The piece "\u2581hi": " hi" after other text, "hi" at the start of a fresh reply. */
export const SPACE_HI = BYTE0 + 256 + 1;

export const TEMPLATE = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";

export interface RouteRuntime extends ModelRuntime {
  /** The options of every sampler made so far, in order. */
  readonly pickers: PickerOptions[];
  readonly hold: { p: Promise<void> | null };
}

export function routeRuntime(o: { replies?: (string | number[])[]; template?: string; nSeq?: number; nCtx?: number; fault?: () => string | null } = {}): RouteRuntime {
  // One byte token per byte: the reply is exactly this text (no dummy-prefix space).
  const replies = (o.replies ?? ['hi there']).map((r) => (typeof r === 'string' ? [...Buffer.from(r, 'utf8')].map((b) => BYTE0 + b) : r));
  const pickers: PickerOptions[] = [];
  const nSeq = o.nSeq ?? 4;
  const nCtx = o.nCtx ?? 256;
  const hold: { p: Promise<void> | null } = { p: null };
  return {
    id: 'scripted', created: 1700000000, nCtx, nSeq, nBatch: 64, meta: { arch: 'test' },
    ctx: {
      nSeq,
      nCtx,
      async decode(b: DecodeBatch) {
        if (hold.p) await hold.p;
        let rows = 0;
        for (const w of b.wantLogits) rows += w;
        return new Float32Array(rows * tok.nVocab);
      },
      truncate() {},
    },
    tokenizer: tok,
    template: new ChatTemplate(o.template ?? TEMPLATE, 'the test template', { bosToken: '<s>', eosToken: '</s>' }),
    pickers,
    hold,
    makePicker(opts) {
      const script = replies[pickers.length % replies.length];
      pickers.push(opts);
      let i = 0;
      return () => {
        const token = script[i++] ?? EOS;
        return opts.topLogprobs === null ? { token } : { token, logprob: -1, top: [] };
      };
    },
    ...(o.fault ? { fault: o.fault } : {}),
    dispose() {},
  };
}

/** An app on rt for the length of fn; a held decode is let go before it closes. */
export async function withApp(rt: RouteRuntime, fn: (app: App) => Promise<void>): Promise<void> {
  const app = await buildApp({ runtime: rt, defaultMetrics: false });
  try {
    await app.modelReady;
    await fn(app);
  } finally {
    rt.hold.p = null;
    await app.close();
  }
}

/** The data lines of an SSE body, parsed; the body must end with data: [DONE]. */
export function sseEvents(body: string): Record<string, unknown>[] {
  const parts = body.split('\n\n');
  assert.equal(parts.pop(), '');
  assert.equal(parts.pop(), 'data: [DONE]');
  return parts.map((p) => {
    assert.ok(p.startsWith('data: '), p);
    return JSON.parse(p.slice('data: '.length)) as Record<string, unknown>;
  });
}
