// Builds a ModelRuntime from a GGUF file with the real engine, tokenizer and sampler.
// engine.ts is imported lazily: it loads the native addon on import, and the HTTP layer
// (and its tests) must work without the addon until a model is actually loaded.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ChatTemplate, DEFAULT_CHAT_TEMPLATE } from '../chat/template.js';
import type { ServeConfig } from '../config.js';
import { SpmTokenizer } from '../tokenizer/spm.js';
import { adaptTokenizer } from './tokenizer-adapter.js';
import { makePickerFactory } from './picker.js';
import type { ModelRuntime } from './runtime.js';
import type { FfnActivation, FfnMode, Isa } from '../engine/types.js';

export interface RuntimeOptions {
  modelPath: string;
  alias?: string | null;
  parallel: number;
  ctxSize: number;
  threads?: number;
  batchSize?: number;
  /** Jinja file overriding the model's template. */
  chatTemplateFile?: string | null;
  isa?: Isa;
  backend?: 'cpu' | 'ref';
  ffnActivation?: 'auto' | FfnActivation;
  ffnMode?: FfnMode;
  sparseThreshold?: number | null;
  sparseMaxBatch?: number;
}

/** Chat template: --chat-template file, else GGUF tokenizer.chat_template, else the default. */
export function pickTemplate(file: string | null | undefined, fromModel: unknown, tokens: { bosToken: string; eosToken: string }): ChatTemplate {
  if (file) {
    let src: string;
    try {
      src = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read chat template ${file}: ${(err as Error).message}`);
    }
    return new ChatTemplate(src, `file ${file}`, tokens);
  }
  if (typeof fromModel === 'string' && fromModel.trim().length > 0) return new ChatTemplate(fromModel, 'the model (tokenizer.chat_template)', tokens);
  return new ChatTemplate(DEFAULT_CHAT_TEMPLATE, 'the built-in default', tokens);
}

export async function createRuntime(o: RuntimeOptions): Promise<ModelRuntime> {
  const { Model } = await import('../engine/engine.js');
  const model = await Model.load(o.modelPath, { ffnActivation: o.ffnActivation ?? 'auto' });
  // Positions past the model's training context give garbage (RoPE was never trained
  // there): the slot size is capped at it.
  const nCtx = Math.min(o.ctxSize, model.info.nCtxTrain);
  let ctx;
  try {
    const tok = SpmTokenizer.fromMetadata(model.metadata);
    const tokenizer = adaptTokenizer(tok, model.metadata);
    const template = pickTemplate(o.chatTemplateFile, model.metadata.get('tokenizer.chat_template'), { bosToken: tokenizer.bosText, eosToken: tokenizer.eosText });
    const nBatch = o.batchSize ?? 512;
    ctx = await model.createContext({
      nSeq: o.parallel,
      nCtx,
      threads: o.threads ?? 0,
      nBatch,
      isa: o.isa,
      backend: o.backend,
      ffnMode: o.ffnMode ?? 'auto',
      sparseThreshold: o.sparseThreshold ?? undefined,
      sparseMaxBatch: o.sparseMaxBatch,
    });
    const info = model.info;
    const c = ctx;
    return {
      id: o.alias ?? path.basename(o.modelPath).replace(/\.gguf$/i, ''),
      created: Math.floor(Date.now() / 1000),
      nCtx,
      nSeq: o.parallel,
      nBatch,
      ctx,
      tokenizer,
      template,
      makePicker: makePickerFactory(info.nVocab),
      meta: {
        arch: info.arch,
        ffn_activation: info.ffnActivation,
        ffn_activation_from: info.ffnActivationFrom,
        ffn_mode: ctx.sparsity().ffnMode,
        powerinfer: info.isPowerInfer,
        n_ctx_train: info.nCtxTrain,
        n_embd: info.nEmbd,
        n_layer: info.nLayer,
        n_params: info.nParams,
        size: info.fileBytes,
        chat_template: template.origin,
      },
      sparsity: () => {
        const sp = c.sparsity();
        if (sp.ffnMode === 'dense') return null;
        const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
        // Neurons computed since start: average ratio x rows x n_ff, over layers (all on the CPU for now).
        const cpu = sp.avgActiveRatio.reduce((s, r) => s + r * sp.totalRows * info.nFf, 0);
        return { activeNeuronRatio: mean(sp.lastActiveRatio), neuronsComputed: { gpu: 0, cpu: Math.round(cpu) } };
      },
      dispose: () => {
        c.dispose();
        model.dispose();
      },
    };
  } catch (err) {
    ctx?.dispose();
    model.dispose();
    throw err;
  }
}

/** The model named by the config; on first start `npm start` makes its small default model. */
export async function loadRuntime(cfg: ServeConfig, log: Logger): Promise<ModelRuntime> {
  if (!existsSync(cfg.model)) {
    if (!cfg.makeModelIfMissing) throw new Error(`model file ${cfg.model} does not exist`);
    log.info({ model: cfg.model, size: cfg.makeModelIfMissing }, 'model file missing: making the default model');
    await mkdir(path.dirname(cfg.model), { recursive: true });
    await makeDefaultModel(cfg.model, cfg.makeModelIfMissing);
  }
  return createRuntime({
    modelPath: cfg.model,
    alias: cfg.alias,
    parallel: cfg.parallel,
    ctxSize: cfg.ctxSize,
    threads: cfg.threads,
    batchSize: cfg.batchSize,
    chatTemplateFile: cfg.chatTemplate,
    ffnActivation: cfg.ffnActivation,
    ffnMode: cfg.ffnMode,
    sparseThreshold: cfg.sparseThreshold,
    sparseMaxBatch: cfg.sparseMaxBatch,
  });
}

/**
 * The synthetic default model (until a trained default model ships): written by the
 * same code as `relu-serve make-model`, imported lazily because it is only needed once.
 */
async function makeDefaultModel(out: string, size: 'tiny' | 'small'): Promise<void> {
  const { makeModel } = await import('../cli/make-model.js');
  await makeModel({ arch: 'bamboo', size, type: 'q4_0', seed: 1, out });
}
