// `relu-serve place`: decide which FFN neurons live on the GPU for a VRAM budget, from a
// model file (its header: tensor types and shapes) and activation statistics. Needs no
// native engine, so it runs anywhere.

import type { Command } from 'commander';
import { describeModelFile } from '../profiler/model-file.js';
import { readStatsFile } from '../profiler/stats-format.js';
import { formatPlacementTable, planPlacement } from '../profiler/placement-plan.js';
import { POWERINFER_GROUP, placementFileFromPlan, writePlacementFile, writePowerInferGpuIdx } from '../profiler/placement-format.js';
import { parseByteSize } from '../profiler/vram-costs.js';
import type { CommandIo } from './profile.js';

export interface PlaceCommandOptions {
  model: string;
  stats: string;
  vramBudget: string;
  ctx: number;
  slots?: number;
  batchSize?: number;
  kvType: string;
  out: string;
  powerinferGpuidx?: string;
}

export async function placeCommand(o: PlaceCommandOptions, io: Pick<CommandIo, 'out' | 'err'>): Promise<void> {
  const budget = parseByteSize(o.vramBudget);
  if (!Number.isSafeInteger(o.ctx) || o.ctx <= 0) throw new Error('--ctx must be a positive integer');
  const kvBytes = { f16: 2, f32: 4 }[o.kvType];
  if (!kvBytes) throw new Error(`--kv-type must be f16 or f32, got ${JSON.stringify(o.kvType)}`);
  const model = await describeModelFile(o.model);
  const stats = readStatsFile(o.stats, model);
  const nSeq = o.slots ?? 1;
  if (!Number.isSafeInteger(nSeq) || nSeq <= 0) throw new Error('--slots must be a positive integer');
  const nBatch = o.batchSize ?? 512;
  if (!Number.isSafeInteger(nBatch) || nBatch <= 0) throw new Error('--batch-size must be a positive integer');
  // For PowerInfer's runtime too: hot counts in its kernels' groups, in both files, so
  // the two describe the same placement.
  const group = o.powerinferGpuidx ? POWERINFER_GROUP : 1;
  const plan = planPlacement(model, stats, { budget, nCtx: o.ctx, nSeq, nBatch, kvBytesPerElement: kvBytes, group });
  io.out(formatPlacementTable(plan) + '\n');
  if (group > 1) io.out(`hot neurons per layer in multiples of ${group} (or all), as PowerInfer's CUDA kernels need\n`);
  const file = placementFileFromPlan(plan);
  writePlacementFile(o.out, file);
  io.out(`wrote ${o.out}\n`);
  if (o.powerinferGpuidx) {
    await writePowerInferGpuIdx(o.powerinferGpuidx, file);
    io.out(`wrote ${o.powerinferGpuidx} (PowerInfer .generated.gpuidx layout)\n`);
  }
}

export function registerPlace(program: Command): void {
  program
    .command('place')
    .description('choose the GPU-resident FFN neurons for a VRAM budget (exact optimum for the given stats)')
    .requiredOption('--model <file>', 'GGUF model')
    .requiredOption('--stats <file>', 'stats file from relu-serve profile')
    .requiredOption('--vram-budget <size>', 'VRAM to use, e.g. 6GiB, 512MiB, 1e9')
    .requiredOption('--out <file>', 'placement file to write (.rspl)')
    .option('--ctx <n>', 'context length the KV cache is sized for', (v) => Number(v), 2048)
    .option('--slots <n>', 'sequences served at once, each with its own KV cache of --ctx positions', (v) => Number(v), 1)
    .option('--batch-size <n>', "most tokens per decode step (the server's --batch-size): sizes the working buffers", (v) => Number(v), 512)
    .option('--kv-type <type>', 'KV cache element type: f16 (relu-serve) or f32', 'f16')
    .option('--powerinfer-gpuidx <file>', "also write PowerInfer's <model>.generated.gpuidx")
    .action(async (opts: PlaceCommandOptions) => {
      try {
        await placeCommand(opts, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
      } catch (e) {
        process.stderr.write(`relu-serve place: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
