// Test helpers: a real relu-serve on loopback over the real engine with a tiny synthetic
// model (written once per test process by make-model's code), and an official OpenAI
// client pointed at it.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { buildApp, type App, type AppOptions } from '../../server/app.js';
import { createRuntime } from '../../server/scheduler/load.js';
import type { ModelRuntime } from '../../server/scheduler/runtime.js';
import type { StepInfo } from '../../server/scheduler/types.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-http-'));
let modelPath: Promise<string> | null = null;

export function tinyModelPath(): Promise<string> {
  if (!modelPath) {
    const out = join(dir, 'tiny.gguf');
    modelPath = import('../../server/cli/make-model.js').then(({ makeModel }) =>
      makeModel({ arch: 'bamboo', size: 'tiny', type: 'f32', seed: 3, out }).then(() => out),
    );
  }
  return modelPath;
}

export interface RuntimeSettings {
  parallel?: number;
  ctxSize?: number;
  chatTemplateFile?: string;
}

export async function tinyRuntime(s: RuntimeSettings = {}): Promise<ModelRuntime> {
  return createRuntime({ modelPath: await tinyModelPath(), alias: 'tiny', parallel: s.parallel ?? 4, ctxSize: s.ctxSize ?? 256, threads: 1, batchSize: 256, chatTemplateFile: s.chatTemplateFile });
}

export interface TestServer {
  app: App;
  baseURL: string;
  url: string;
  client: OpenAI;
  steps: StepInfo[];
  close(): Promise<void>;
}

/** A logit_bias that bans the server's end-of-sequence token: keeps the random tiny model
 * from ending early, so reply lengths are predictable. */
export function noEosBias(s: TestServer): Record<string, number> {
  return { [String(s.app.relu.runtime!.tokenizer.eosId)]: -100 };
}

export async function startServer(opts: Partial<AppOptions> & RuntimeSettings = {}): Promise<TestServer> {
  const steps: StepInfo[] = [];
  const app = await buildApp({
    runtime: opts.runtime ?? tinyRuntime(opts),
    defaultMetrics: false,
    onStep: (s) => {
      steps.push(s);
      if (steps.length > 10_000) steps.splice(0, 5_000);
    },
    ...opts,
  });
  await app.modelReady;
  if (app.relu.loadError) throw app.relu.loadError;
  const addr = await app.listen({ host: '127.0.0.1', port: 0 });
  const client = new OpenAI({ baseURL: `${addr}/v1`, apiKey: opts.apiKeys?.[0] ?? 'unused', maxRetries: 0, timeout: 60_000 });
  const close = async () => {
    // After a failed test a client may have left a response unread; do not wait for
    // keep-alive timeouts on it.
    const t = setTimeout(() => app.server.closeAllConnections(), 2000);
    await app.close();
    clearTimeout(t);
  };
  return { app, url: addr, baseURL: `${addr}/v1`, client, steps, close };
}

/** Polls until cond() holds or the time is up. */
export async function waitFor(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
