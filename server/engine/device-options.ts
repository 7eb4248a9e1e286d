// From the user's device settings (--device, --vram-budget, --placement, --stats) to the
// context options of the hybrid runtime. The engine reads placement files itself; with
// activation statistics and no placement file, the hot neurons are solved here, at load,
// by the same solver and byte accounting as `relu-serve place`.

import { describeModelFile } from '../profiler/model-file.js';
import { planPlacement } from '../profiler/placement-plan.js';
import { readStatsFile } from '../profiler/stats-format.js';
import { formatBytes, parseByteSize } from '../profiler/vram-costs.js';
import type { ContextOptions, Device, FfnMode } from './types.js';

export type VramBudget = { bytes: number } | { fraction: number };

/** "8GiB", "512MiB", "1e9" (bytes) or "40%" (of the device's free memory). */
export function parseVramBudget(text: string): VramBudget {
  const pct = /^\s*([0-9]*\.?[0-9]+)\s*%\s*$/.exec(text);
  if (pct) {
    const f = Number(pct[1]) / 100;
    if (!(f > 0 && f <= 1)) throw new Error(`VRAM budget ${JSON.stringify(text)}: a share of free memory must be in (0%, 100%]`);
    return { fraction: f };
  }
  return { bytes: parseByteSize(text) };
}

export interface DeviceSettings {
  device: Device;
  /** As given: bytes or a percentage; null: the placement file's budget, else 90% of free memory. */
  vramBudget: string | null;
  placement: string | null;
  stats: string | null;
  emuMemory?: number;
  emuLatencyUs?: number;
}

export interface ResolvedDevice {
  /** Options for createContext. */
  options: Pick<ContextOptions, 'device' | 'vramBudget' | 'vramBudgetFraction' | 'placement' | 'hotNeurons' | 'hotSource' | 'emuMemory' | 'emuLatencyUs'>;
  /** What the log should say about the choice (e.g. statistics ignored). */
  notes: string[];
}

export interface DeviceContextShape {
  modelPath: string;
  nSeq: number;
  nCtx: number;
  nBatch: number;
  ffnMode: FfnMode;
  hasPredictors: boolean;
}

/**
 * Resolves "auto" (cuda when a GPU is found), checks the settings fit the device, and,
 * with statistics and no placement file, solves the placement for the budget.
 */
export async function resolveDevice(s: DeviceSettings, shape: DeviceContextShape, gpus: () => number, deviceMemory: (d: 'cuda' | 'emu', emu: number) => Promise<{ free: number }>): Promise<ResolvedDevice> {
  const notes: string[] = [];
  const device = s.device === 'auto' ? (gpus() > 0 ? 'cuda' : 'cpu') : s.device;
  const hybridOnly = [s.vramBudget && '--vram-budget', s.placement && '--placement', s.stats && '--stats'].filter(Boolean);
  if (device === 'cpu') {
    if (hybridOnly.length > 0) {
      if (s.device === 'cpu') throw new Error(`${hybridOnly.join(', ')} need a device (--device cuda or emu); --device cpu keeps everything on the CPU`);
      notes.push(`no GPU found: running on the CPU; ${hybridOnly.join(', ')} not used`);
    }
    return { options: { device: 'cpu' }, notes };
  }
  const options: ResolvedDevice['options'] = { device, emuMemory: s.emuMemory, emuLatencyUs: s.emuLatencyUs };
  const budget = s.vramBudget ? parseVramBudget(s.vramBudget) : null;
  if (budget && 'bytes' in budget) options.vramBudget = budget.bytes;
  if (budget && 'fraction' in budget) options.vramBudgetFraction = budget.fraction;
  if (s.placement) {
    options.placement = s.placement;
    if (s.stats) notes.push(`--stats ${s.stats} not used: the placement comes from --placement ${s.placement}`);
    return { options, notes };
  }
  if (!s.stats) return { options, notes };
  // Statistics: solve the placement for the budget in bytes.
  let bytes: number;
  if (budget && 'bytes' in budget) bytes = budget.bytes;
  else {
    const mem = await deviceMemory(device, s.emuMemory ?? 0);
    bytes = Math.floor((budget && 'fraction' in budget ? budget.fraction : 0.9) * mem.free);
    options.vramBudget = bytes;
  }
  const model = await describeModelFile(shape.modelPath);
  const stats = readStatsFile(s.stats, model);
  const predictors = shape.ffnMode === 'predictor' || (shape.ffnMode === 'auto' && shape.hasPredictors);
  const plan = planPlacement(model, stats, { budget: bytes, nCtx: shape.nCtx, nSeq: shape.nSeq, nBatch: shape.nBatch, predictors });
  options.vramBudget = bytes;
  options.hotNeurons = plan.layers.map((l) => Int32Array.from(l.gpuNeurons));
  const pct = plan.total > 0 ? ((100 * plan.covered) / plan.total).toFixed(1) : '0';
  options.hotSource = `statistics ${s.stats}, solved at load for ${formatBytes(bytes)}: ${pct}% of the profiled activations on the device`;
  return { options, notes };
}
