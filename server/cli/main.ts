#!/usr/bin/env node
// `relu-serve`: the command line. Each subcommand lives in its own file and registers
// itself here; heavy modules (the native addon, fastify) load only when a command runs.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { registerServe } from './serve.js';
import { registerGenerate } from './generate.js';
import { registerMakeModel } from './make-model.js';
import { registerBench } from './bench.js';
import { registerBandwidth } from './bandwidth.js';
import { registerBenchServer } from './bench-server.js';
import { registerBenchKernels } from './bench-kernels.js';
import { registerPerplexity } from './perplexity.js';
import { registerProfile } from './profile.js';
import { registerPlace } from './place.js';
import { registerTrainPredictor } from './train-predictor.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('relu-serve')
  .description('OpenAI-compatible inference server for activation-sparse (ReLU) LLMs')
  .version(pkg.version)
  .showHelpAfterError();

registerServe(program);
registerGenerate(program);
registerMakeModel(program);
registerBench(program);
registerBandwidth(program);
registerBenchServer(program);
registerBenchKernels(program);
registerPerplexity(program);
registerProfile(program);
registerPlace(program);
registerTrainPredictor(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as Error & { code?: string };
  process.stderr.write(`relu-serve: ${e?.message ?? String(err)}\n`);
  process.exitCode = 1;
});
