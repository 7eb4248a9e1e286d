// The text worker on its own: a template that never ends is stopped after the budget
// (TextWorkerError naming the template stage), the next request gets a fresh thread,
// and requests beyond maxWaiting are refused at once instead of piling up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model } from '../../server/engine/engine.js';
import { TextWorker, TextWorkerBusyError, TextWorkerError } from '../../server/chat/text-worker.js';
import { tinyModelPath } from '../e2e/server.js';

test('budget, recovery and the waiting bound', async () => {
  const m = await Model.load(await tinyModelPath());
  const meta = new Map([...m.metadata].filter(([k]) => k.startsWith('tokenizer.')));
  m.dispose();
  const source = "{% if messages[0].content == 'loop' %}{% for i in range(100000000) %}{% endfor %}{% endif %}{{ messages[0].content }}";
  const w = new TextWorker({ meta, template: { source, origin: 'test' } }, { timeoutMs: 300, maxWaiting: 2 });
  try {
    const ok = await w.chat([{ role: 'user', content: 'hello' }], null);
    assert.ok('tokens' in ok && ok.tokens.length > 0);
    const looping = w.chat([{ role: 'user', content: 'loop' }], null);
    const queued = [w.chat([{ role: 'user', content: 'a' }], null), w.encode('b', false, false, null)];
    await assert.rejects(w.encode('c', false, false, null), TextWorkerBusyError);
    await assert.rejects(looping, (e: TextWorkerError) => e instanceof TextWorkerError && e.inTemplate && /300 ms/.test(e.message));
    for (const r of await Promise.all(queued)) assert.ok('tokens' in r);
    // A size bound: a text that cannot fit 10 tokens is not tokenised.
    const big = await w.encode('x'.repeat(10_000), false, false, 10);
    assert.ok('atLeast' in big && big.atLeast >= 10);
  } finally {
    await w.close();
  }
});
