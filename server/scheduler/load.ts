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
import type { DecodeContext } from './types.js';
import type { DeviceInfo, FfnActivation, FfnMode, Isa } from '../engine/types.js';
import { resolveDevice, type DeviceSettings } from '../engine/device-options.js';
import { formatBytes, parseByteSize } from '../profiler/vram-costs.js';
import { TextWorker } from '../chat/text-worker.js';
import { ModelFileChangedError, ModelFileGuard } from './model-file-guard.js';

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
  /** The hybrid runtime (default: the CPU only). */
  device?: DeviceSettings;
  /** Memory-map the file (default); false reads a private copy (model-file-guard.ts). */
  mmap?: boolean;
  /** LoadOptions.downInt8. */
  downInt8?: boolean;
  /** Budget for rendering the chat template and tokenising one prompt, ms (chat/text-worker.ts). */
  textTimeoutMs?: number;
  /** Where to say what the device choice did (placement source, notes). */
  log?: Pick<Logger, 'info' | 'warn' | 'error'>;
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
  const { native } = await import('../engine/binding.js');
  const mmap = o.mmap ?? true;
  // Taken before the engine opens the file, so a change during the load is seen too.
  const guard = mmap ? new ModelFileGuard(o.modelPath, ModelFileGuard.stat(o.modelPath), o.log) : null;
  const model = await Model.load(o.modelPath, { ffnActivation: o.ffnActivation ?? 'auto', noMmap: !mmap, downInt8: o.downInt8 ?? false });
  // Positions past the model's training context give garbage (RoPE was never trained
  // there): the slot size is capped at it.
  const nCtx = Math.min(o.ctxSize, model.info.nCtxTrain);
  let ctx;
  try {
    const tok = SpmTokenizer.fromMetadata(model.metadata);
    const tokenizer = adaptTokenizer(tok, model.metadata);
    const template = pickTemplate(o.chatTemplateFile, model.metadata.get('tokenizer.chat_template'), { bosToken: tokenizer.bosText, eosToken: tokenizer.eosText });
    const nBatch = o.batchSize ?? 512;
    const dev = await resolveDevice(
      o.device ?? { device: 'cpu', vramBudget: null, placement: null, stats: null },
      { modelPath: o.modelPath, nSeq: o.parallel, nCtx, nBatch, ffnMode: o.ffnMode ?? 'auto', hasPredictors: model.info.hasPredictors },
      () => native.cuda.devices(),
      (d, emu) => native.deviceMemory(d, emu),
    );
    for (const note of dev.notes) o.log?.warn(note);
    ctx = await model.createContext({
      ...dev.options,
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
    const device = c.device();
    if (device.device !== 'cpu') {
      o.log?.info(
        {
          device: device.name,
          budget: device.budget,
          used: device.used,
          bytes: device.bytes,
          ffnOnDevice: device.ffnAll > 0 ? device.bytes.ffn / device.ffnAll : 0,
          hotNeurons: device.hotNeurons,
        },
        `hybrid runtime on ${device.name}: ${formatBytes(device.used)} of a ${formatBytes(device.budget)} budget (${device.budgetFrom}), ` +
          `${(100 * (device.ffnAll > 0 ? device.bytes.ffn / device.ffnAll : 0)).toFixed(1)}% of the FFN on the device; hot neurons: ${device.placementSource}`,
      );
    }
    guard?.watch();
    const tokMeta = new Map([...model.metadata].filter(([k]) => k.startsWith('tokenizer.')));
    const text = new TextWorker({ meta: tokMeta, template: { source: template.source, origin: template.origin } }, { timeoutMs: o.textTimeoutMs });
    return {
      id: o.alias ?? path.basename(o.modelPath).replace(/\.gguf$/i, ''),
      created: Math.floor(Date.now() / 1000),
      nCtx,
      nSeq: o.parallel,
      nBatch,
      ctx: guard ? guardedContext(c, guard) : c,
      tokenizer,
      template,
      text,
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
        device: describeDevice(device),
      },
      stepParts: () => c.sparsity().phaseMs,
      sparsity: () => {
        const sp = c.sparsity();
        if (sp.ffnMode === 'dense') return null;
        const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
        if (device.device !== 'cpu') {
          const h = c.hybridStats();
          return { activeNeuronRatio: mean(sp.lastActiveRatio), activeNeuronRatioByLayer: sp.lastActiveRatio, neuronsComputed: { gpu: h.neuronsDevice, cpu: h.neuronsHost } };
        }
        // Neurons computed since start: average ratio x rows x n_ff, over layers.
        const cpu = sp.avgActiveRatio.reduce((s, r) => s + r * sp.totalRows * info.nFf, 0);
        return { activeNeuronRatio: mean(sp.lastActiveRatio), activeNeuronRatioByLayer: sp.lastActiveRatio, neuronsComputed: { gpu: 0, cpu: Math.round(cpu) } };
      },
      device: device.device === 'cpu' ? undefined : { info: device, stats: () => c.hybridStats() },
      fault: () => guard?.check() ?? null,
      dispose: () => {
        guard?.stop();
        void text.close();
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
    mmap: cfg.mmap,
    downInt8: cfg.downInt8,
    textTimeoutMs: cfg.textTimeoutMs,
    device: {
      device: cfg.device,
      vramBudget: cfg.vramBudget,
      placement: cfg.placement,
      stats: cfg.stats,
      emuMemory: cfg.emuMemory === null ? undefined : parseByteSize(cfg.emuMemory),
      emuLatencyUs: cfg.emuLatencyUs,
    },
    log,
  });
}

/** The context with a file check before each decode: a changed file must never be read (model-file-guard.ts). */
function guardedContext(c: DecodeContext, guard: ModelFileGuard): DecodeContext {
  return {
    get nSeq() {
      return c.nSeq;
    },
    get nCtx() {
      return c.nCtx;
    },
    decode: (batch) => {
      const fault = guard.check();
      if (fault) return Promise.reject(new ModelFileChangedError(fault));
      // Truncated while this decode read the mapping: the addon recovered the fault.
      return c.decode(batch).catch((err: Error & { code?: string }) => {
        throw err.code === 'RS_ERR_MODEL_FILE' ? new ModelFileChangedError(guard.fail(err.message)) : err;
      });
    },
    truncate: (seq, p0) => c.truncate(seq, p0),
  };
}

/** The device part of GET /v1/models' meta (snake_case, as the rest of meta). */
export function describeDevice(d: DeviceInfo): Record<string, unknown> {
  if (d.device === 'cpu') return { type: 'cpu' };
  return {
    type: d.device,
    name: d.name,
    vram_budget: d.budget,
    vram_budget_from: d.budgetFrom,
    vram_used: d.used,
    vram_bytes: {
      attention: d.bytes.attention,
      predictors: d.bytes.predictors,
      norms: d.bytes.norms,
      output: d.bytes.output,
      kv_cache: d.bytes.kvCache,
      neuron_index: d.bytes.index,
      workspace: d.bytes.workspace,
      ffn: d.bytes.ffn,
    },
    ffn_on_device: d.ffnAll > 0 ? d.bytes.ffn / d.ffnAll : 0,
    hot_neurons: d.hotNeurons,
    placement: d.placementSource,
  };
}

/**
 * The synthetic default model (until a trained default model ships): written by the
 * same code as `relu-serve make-model`, imported lazily because it is only needed once.
 */
async function makeDefaultModel(out: string, size: 'tiny' | 'small'): Promise<void> {
  const { makeModel } = await import('../cli/make-model.js');
  await makeModel({ arch: 'bamboo', size, type: 'q4_0', seed: 1, out });
}
