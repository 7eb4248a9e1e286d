// The text worker's thread (chat/text-worker.ts starts it): rebuilds the tokenizer and
// the chat template from what the main thread sends, then answers requests one at a
// time. A template that loops, or a huge prompt, costs this thread's time, never the
// event loop's; the main thread terminates it when a request overruns its budget.

import { parentPort, workerData } from 'node:worker_threads';
import { getPriority, setPriority } from 'node:os';
import { SpmTokenizer } from '../tokenizer/spm.js';
import { adaptTokenizer } from '../scheduler/tokenizer-adapter.js';
import { ChatTemplate } from './template.js';
import { chatText, encodeWithin } from './prompt-tokens.js';
import type { TextInit, TextReply, TextRequest } from './text-worker.js';

// On Linux a nice value set with pid 0 applies to the calling thread only: this thread
// then yields the CPU to the event loop on a busy machine (elsewhere it would renice the
// whole process, so it is left alone).
if (process.platform === 'linux') {
  try {
    setPriority(0, Math.min(19, getPriority(0) + 10));
  } catch {
    /* not permitted: run at the same priority */
  }
}

const init = workerData as TextInit;
const tok = adaptTokenizer(SpmTokenizer.fromMetadata(init.meta), init.meta);
const template = new ChatTemplate(init.template.source, init.template.origin, { bosToken: tok.bosText, eosToken: tok.eosText });
const port = parentPort!;
port.postMessage({ ready: true } satisfies TextReply);

port.on('message', (req: TextRequest) => {
  let reply: TextReply;
  try {
    if (req.op === 'chat') {
      const { text, addBos } = chatText(template, tok, req.messages, req.opts);
      port.postMessage({ id: req.id, rendered: true } satisfies TextReply);
      reply = { id: req.id, result: encodeWithin(tok, text, addBos, true, req.limit) };
    } else {
      reply = { id: req.id, result: encodeWithin(tok, req.text, req.addBos, req.special, req.limit) };
    }
  } catch (err) {
    const e = err as Error;
    reply = { id: req.id, error: { name: e.name, message: e.message } };
  }
  port.postMessage(reply);
});
