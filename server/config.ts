// Server settings: configs/default.json (or --config FILE), then RELU_SERVE_* environment
// variables, then command-line flags, each overriding the one before. Everything is
// validated once at start and reported with the source that set the bad value, so a
// typo fails fast with a message rather than misbehaving later. configs/README.md
// documents each key.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseVramBudget } from './engine/device-options.js';
import { parseByteSize } from './profiler/vram-costs.js';

export interface ServeConfig {
  /** GGUF file to serve. */
  model: string;
  /** When the model file is missing, make a synthetic model of this size there (npm start's default); null: never. */
  makeModelIfMissing: 'tiny' | 'small' | null;
  /** Model id in the API; default: the file name without .gguf. */
  alias: string | null;
  host: string;
  port: number;
  /** Slots: sequences decoded together. */
  parallel: number;
  /** Positions per slot. */
  ctxSize: number;
  /** Compute threads; 0: all cores. */
  threads: number;
  /** Most tokens per decode step. */
  batchSize: number;
  /** Requests that may wait for a slot before the server answers 429. */
  maxQueue: number;
  /** Accepted API keys; empty: no authentication. */
  apiKeys: string[];
  /** Allowed CORS origins; empty: CORS off. "*" allows any. */
  corsOrigins: string[];
  /** Largest request body in bytes. */
  bodyLimit: number;
  /** Most values (arrays, objects and their elements) a JSON body may hold (http/json-limits.ts). */
  jsonMaxValues: number;
  /** Memory-map the model file (false: read a private copy; safe against the file changing, model-file-guard.ts). */
  mmap: boolean;
  /** Sparse FFN of Q4_0 PowerInfer files: down projection summed in 8-bit integers (README "Sparse inference"). */
  downInt8: boolean;
  /** Budget, ms, for rendering the chat template and tokenising one prompt (off the event loop). */
  textTimeoutMs: number;
  /** Jinja chat template file overriding the model's own. */
  chatTemplate: string | null;
  /** On SIGTERM, how long in-flight requests may run before they are cut. */
  shutdownGraceMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** FFN activation: auto decides from the file (README "FFN activation"). */
  ffnActivation: 'auto' | 'swiglu' | 'relu_glu' | 'drelu';
  /** FFN mode: auto, dense, exact or predictor (README "Sparse inference"). */
  ffnMode: 'auto' | 'dense' | 'exact' | 'predictor';
  /** Predictor threshold; null: the file's powerinfer.sparse_threshold. */
  sparseThreshold: number | null;
  /** A sequence bringing more rows than this to a step runs the dense FFN; 0: the engine's default (every size for PowerInfer files, 8 otherwise). */
  sparseMaxBatch: number;
  /** Where the model runs: auto (cuda when a GPU is found, else cpu), cpu, cuda, emu (README "Hybrid CPU/GPU"). */
  device: 'auto' | 'cpu' | 'cuda' | 'emu';
  /** Device memory to use: "8GiB" or "40%" of free memory; null: a placement file's budget, else 90%. */
  vramBudget: string | null;
  /** Hot neurons from a placement file (.rspl from `place`, or PowerInfer's .generated.gpuidx). */
  placement: string | null;
  /** Activation statistics from `profile`: without a placement, hot neurons are solved at load. */
  stats: string | null;
  /** Emulated device: its memory ("8GiB"; null: 8 GiB) and the delay before each operation. */
  emuMemory: string | null;
  emuLatencyUs: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The package root (two levels above dist/server/ or server/). */
export const packageRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      readFileSync(path.join(dir, 'package.json'));
      return dir;
    } catch {
      dir = path.dirname(dir);
    }
  }
  return process.cwd();
})();

export const defaultConfigPath = path.join(packageRoot, 'configs', 'default.json');

type Kind = 'string' | 'nullableString' | 'int' | 'nullableNumber' | 'stringList' | 'enum' | 'bool';
interface KeySpec {
  kind: Kind;
  env: string;
  min?: number;
  max?: number;
  values?: readonly (string | null)[];
  /** A path: resolved against the config file's package root or the cwd. */
  isPath?: boolean;
  /** Never quoted in an error: the message ends up in logs. */
  secret?: boolean;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const SPEC: Record<keyof ServeConfig, KeySpec> = {
  model: { kind: 'string', env: 'RELU_SERVE_MODEL', isPath: true },
  makeModelIfMissing: { kind: 'enum', env: 'RELU_SERVE_MAKE_MODEL_IF_MISSING', values: ['tiny', 'small', null] },
  alias: { kind: 'nullableString', env: 'RELU_SERVE_ALIAS' },
  host: { kind: 'string', env: 'RELU_SERVE_HOST' },
  port: { kind: 'int', env: 'RELU_SERVE_PORT', min: 0, max: 65535 },
  parallel: { kind: 'int', env: 'RELU_SERVE_PARALLEL', min: 1, max: 256 },
  ctxSize: { kind: 'int', env: 'RELU_SERVE_CTX_SIZE', min: 16, max: 1 << 20 },
  threads: { kind: 'int', env: 'RELU_SERVE_THREADS', min: 0, max: 1024 },
  batchSize: { kind: 'int', env: 'RELU_SERVE_BATCH_SIZE', min: 1, max: 1 << 16 },
  maxQueue: { kind: 'int', env: 'RELU_SERVE_MAX_QUEUE', min: 0, max: 1 << 20 },
  apiKeys: { kind: 'stringList', env: 'RELU_SERVE_API_KEYS', secret: true },
  corsOrigins: { kind: 'stringList', env: 'RELU_SERVE_CORS_ORIGINS' },
  bodyLimit: { kind: 'int', env: 'RELU_SERVE_BODY_LIMIT', min: 1024, max: 1 << 30 },
  jsonMaxValues: { kind: 'int', env: 'RELU_SERVE_JSON_MAX_VALUES', min: 16, max: 1 << 30 },
  mmap: { kind: 'bool', env: 'RELU_SERVE_MMAP' },
  downInt8: { kind: 'bool', env: 'RELU_SERVE_DOWN_INT8' },
  textTimeoutMs: { kind: 'int', env: 'RELU_SERVE_TEXT_TIMEOUT_MS', min: 10, max: 600_000 },
  chatTemplate: { kind: 'nullableString', env: 'RELU_SERVE_CHAT_TEMPLATE', isPath: true },
  shutdownGraceMs: { kind: 'int', env: 'RELU_SERVE_SHUTDOWN_GRACE_MS', min: 0, max: 3_600_000 },
  logLevel: { kind: 'enum', env: 'RELU_SERVE_LOG_LEVEL', values: LOG_LEVELS },
  ffnActivation: { kind: 'enum', env: 'RELU_SERVE_FFN_ACTIVATION', values: ['auto', 'swiglu', 'relu_glu', 'drelu'] },
  ffnMode: { kind: 'enum', env: 'RELU_SERVE_FFN_MODE', values: ['auto', 'dense', 'exact', 'predictor'] },
  sparseThreshold: { kind: 'nullableNumber', env: 'RELU_SERVE_SPARSE_THRESHOLD' },
  sparseMaxBatch: { kind: 'int', env: 'RELU_SERVE_SPARSE_MAX_BATCH', min: 0, max: 65536 },
  device: { kind: 'enum', env: 'RELU_SERVE_DEVICE', values: ['auto', 'cpu', 'cuda', 'emu'] },
  vramBudget: { kind: 'nullableString', env: 'RELU_SERVE_VRAM_BUDGET' },
  placement: { kind: 'nullableString', env: 'RELU_SERVE_PLACEMENT', isPath: true },
  stats: { kind: 'nullableString', env: 'RELU_SERVE_STATS', isPath: true },
  emuMemory: { kind: 'nullableString', env: 'RELU_SERVE_EMU_MEMORY' },
  emuLatencyUs: { kind: 'int', env: 'RELU_SERVE_EMU_LATENCY_US', min: 0, max: 1_000_000 },
};

/** Built-in values under everything else, so a config file may set only what it changes. */
const BUILTIN: ServeConfig = {
  model: '',
  makeModelIfMissing: null,
  alias: null,
  host: '127.0.0.1',
  port: 8080,
  parallel: 4,
  ctxSize: 2048,
  threads: 0,
  batchSize: 512,
  maxQueue: 64,
  apiKeys: [],
  corsOrigins: [],
  bodyLimit: 1 << 20,
  jsonMaxValues: 65536,
  mmap: true,
  downInt8: false,
  textTimeoutMs: 5000,
  chatTemplate: null,
  shutdownGraceMs: 10_000,
  logLevel: 'info',
  ffnActivation: 'auto',
  ffnMode: 'auto',
  sparseThreshold: null,
  sparseMaxBatch: 0,
  device: 'auto',
  vramBudget: null,
  placement: null,
  stats: null,
  emuMemory: null,
  emuLatencyUs: 0,
};

/** A value for an error message; JSON.stringify would print 1e400 (Infinity) as null. */
function show(raw: unknown): string {
  if (typeof raw === 'number') return String(raw);
  const text = JSON.stringify(raw) ?? String(raw);
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

function coerce(key: keyof ServeConfig, raw: unknown, source: string, fromText: boolean): unknown {
  const spec = SPEC[key];
  const where = `${key} (from ${source})`;
  const got = spec.secret ? `a value of type ${Array.isArray(raw) ? 'array' : raw === null ? 'null' : typeof raw} (not shown: it is a secret)` : show(raw);
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(`${where} must be a non-empty string, got ${got}`);
      return raw;
    case 'nullableString':
      if (raw === null || (fromText && raw === '')) return null;
      if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(`${where} must be a non-empty string or null, got ${got}`);
      return raw;
    case 'int': {
      const v = fromText && typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(`${where} must be an integer, got ${got}`);
      if (v < spec.min! || v > spec.max!) throw new ConfigError(`${where} must be in [${spec.min}, ${spec.max}], got ${v}`);
      return v;
    }
    case 'nullableNumber': {
      if (raw === null || (fromText && raw === '')) return null;
      const v = fromText && typeof raw === 'string' ? Number(raw) : raw;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${where} must be a number or null, got ${got}`);
      return v;
    }
    case 'stringList': {
      const list = fromText && typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
      if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && s.length > 0)) {
        throw new ConfigError(`${where} must be a list of non-empty strings, got ${got}`);
      }
      return list;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (fromText && typeof raw === 'string' && /^(true|1|false|0)$/i.test(raw.trim())) return /^(true|1)$/i.test(raw.trim());
      throw new ConfigError(`${where} must be true or false, got ${got}`);
    }
    case 'enum': {
      const v = fromText && raw === '' ? null : raw;
      if (!spec.values!.includes(v as string | null)) {
        throw new ConfigError(`${where} must be one of ${spec.values!.map((x) => JSON.stringify(x)).join(', ')}, got ${got}`);
      }
      return v;
    }
  }
}

export interface ConfigSources {
  /** Config file; default configs/default.json. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flag values already parsed by commander (undefined: not given). */
  flags?: Partial<Record<keyof ServeConfig, unknown>>;
  cwd?: string;
}

export function readConfigFile(file: string): Partial<ServeConfig> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let obj: unknown;
  try {
    // Editors on Windows save UTF-8 with a byte order mark, which JSON.parse refuses.
    obj = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new ConfigError(`config file ${file} must hold a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k.startsWith('$') || k === 'comment') continue; // "$schema", "$comment", "comment" are documentation
    if (!(k in SPEC)) throw new ConfigError(`config file ${file}: unknown key '${k}' (known: ${Object.keys(SPEC).join(', ')})`);
    let val = coerce(k as keyof ServeConfig, v, file, false);
    // Paths in the file are relative to the package root, so the file works from any cwd.
    if (SPEC[k as keyof ServeConfig].isPath && typeof val === 'string') val = path.resolve(packageRoot, val);
    out[k] = val;
  }
  return out as Partial<ServeConfig>;
}

export function loadConfig(src: ConfigSources = {}): ServeConfig {
  const cwd = src.cwd ?? process.cwd();
  const env = src.env ?? process.env;
  const cfg: Record<string, unknown> = { ...BUILTIN, ...readConfigFile(src.file ?? defaultConfigPath) };
  for (const key of Object.keys(SPEC) as (keyof ServeConfig)[]) {
    const spec = SPEC[key];
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined) {
      let v = coerce(key, fromEnv, `environment ${spec.env}`, true);
      if (spec.isPath && typeof v === 'string') v = path.resolve(cwd, v);
      cfg[key] = v;
    }
    const flag = src.flags?.[key];
    if (flag !== undefined) {
      let v = coerce(key, flag, 'command line', true);
      if (spec.isPath && typeof v === 'string') v = path.resolve(cwd, v);
      cfg[key] = v;
    }
  }
  const out = cfg as unknown as ServeConfig;
  if (!out.model) throw new ConfigError(`no model: set "model" in the config file, RELU_SERVE_MODEL, or --model FILE`);
  for (const [key, parse] of [['vramBudget', parseVramBudget], ['emuMemory', parseByteSize]] as const) {
    const v = out[key];
    if (v === null) continue;
    try {
      parse(v);
    } catch (e) {
      throw new ConfigError(`${key}: ${(e as Error).message}`);
    }
  }
  if (out.batchSize < out.parallel) throw new ConfigError(`batchSize (${out.batchSize}) must be at least parallel (${out.parallel}): every slot adds a token per step`);
  return out;
}

/** The config with secrets masked, for the start-up log line. */
export function redactConfig(cfg: ServeConfig): Record<string, unknown> {
  return { ...cfg, apiKeys: cfg.apiKeys.map(() => '***') };
}

/**
 * Every environment variable the server reads for its settings: one per config key, plus
 * RELU_SERVE_CONFIG (the config file, server/main.ts). The deploy tests check container and
 * Kubernetes files against it.
 */
export const configEnvNames: readonly string[] = ['RELU_SERVE_CONFIG', ...Object.values(SPEC).map((s) => s.env)];
