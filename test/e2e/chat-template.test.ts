// Chat templates end to end: the model's own GGUF template, --chat-template overriding
// it, and a template's raise_exception() reaching the client as a 400.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, type App } from '../../server/app.js';
import { createRuntime } from '../../server/scheduler/load.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-tpl-'));
const apps: App[] = [];
after(async () => {
  for (const a of apps) await a.close();
});

// Only user turns allowed; each becomes "U: <content>\n", then "A:".
const MODEL_TEMPLATE =
  "{% for m in messages %}{% if m['role'] != 'user' %}{{ raise_exception('only user messages, got ' + m['role']) }}{% endif %}" +
  "U: {{ m['content'] }}\n{% endfor %}A:";

async function appFor(chatTemplateFile?: string): Promise<App> {
  const { makeModel } = await import('../../server/cli/make-model.js');
  const out = join(dir, 'with-template.gguf');
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'f32', seed: 9, out, chatTemplate: MODEL_TEMPLATE });
  const rt = await createRuntime({ modelPath: out, alias: 'tpl', parallel: 1, ctxSize: 128, threads: 1, chatTemplateFile });
  const app = await buildApp({ runtime: rt, defaultMetrics: false });
  await app.modelReady;
  apps.push(app);
  return app;
}

async function promptTokens(app: App, messages: unknown[]): Promise<{ status: number; body: any }> {
  const res = await app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { messages, max_tokens: 1, temperature: 0 } });
  return { status: res.statusCode, body: res.json() };
}

test("the model's own template is used, and its raise_exception is a 400", async () => {
  const app = await appFor();
  const models = (await app.inject({ method: 'GET', url: '/v1/models' })).json() as { data: { meta: { chat_template: string } }[] };
  assert.match(models.data[0].meta.chat_template, /tokenizer\.chat_template/);
  const ok = await promptTokens(app, [{ role: 'user', content: 'hello' }]);
  assert.equal(ok.status, 200);
  // BOS + the tokens of "U: hello\nA:" exactly.
  const tok = (await app.inject({ method: 'POST', url: '/tokenize', payload: { content: 'U: hello\nA:', add_special: true } })).json() as { tokens: number[] };
  assert.equal(ok.body.usage.prompt_tokens, tok.tokens.length);
  const bad = await promptTokens(app, [{ role: 'system', content: 'x' }, { role: 'user', content: 'hello' }]);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.param, 'messages');
  assert.match(bad.body.error.message, /only user messages, got system/);
});

test('--chat-template FILE overrides the model template', async () => {
  const file = join(dir, 'override.jinja');
  writeFileSync(file, "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant]");
  const app = await appFor(file);
  const models = (await app.inject({ method: 'GET', url: '/v1/models' })).json() as { data: { meta: { chat_template: string } }[] };
  assert.match(models.data[0].meta.chat_template, /override\.jinja/);
  // The system message the model's template refuses is fine with the override.
  const r = await promptTokens(app, [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }]);
  assert.equal(r.status, 200);
  const tok = (await app.inject({ method: 'POST', url: '/tokenize', payload: { content: '[system] be brief\n[user] hello\n[assistant]', add_special: true } })).json() as { tokens: number[] };
  assert.equal(r.body.usage.prompt_tokens, tok.tokens.length);
});

test('a chat template file that does not exist or does not parse fails the load with its name', async () => {
  await assert.rejects(appFor(join(dir, 'missing.jinja')).then((a) => { if (a.relu.loadError) throw a.relu.loadError; }), /missing\.jinja/);
  const bad = join(dir, 'bad.jinja');
  writeFileSync(bad, '{% for %}');
  await assert.rejects(createRuntime({ modelPath: join(dir, 'with-template.gguf'), parallel: 1, ctxSize: 64, chatTemplateFile: bad }), /bad\.jinja/);
});
