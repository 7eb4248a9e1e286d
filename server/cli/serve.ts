// `relu-serve serve`: flags for the OpenAI-compatible server. Flags override
// RELU_SERVE_* environment variables, which override the config file (configs/README.md).

import type { Command } from 'commander';

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

export function registerServe(program: Command): Command {
  return program
    .command('serve')
    .description('serve a GGUF model over an OpenAI-compatible HTTP API')
    .option('-c, --config <file>', 'config file (default: configs/default.json; env RELU_SERVE_CONFIG)')
    .option('-m, --model <file>', 'GGUF model to serve')
    .option('--alias <name>', 'model id shown by the API (default: the file name without .gguf)')
    .option('--host <host>', 'address to listen on')
    .option('--port <port>', 'port to listen on (0: any free port)')
    .option('--parallel <n>', 'slots: sequences decoded together')
    .option('--ctx-size <n>', 'context positions per slot')
    .option('-t, --threads <n>', 'compute threads (0: all cores)')
    .option('--batch-size <n>', 'most tokens per decode step')
    .option('--max-queue <n>', 'requests that may wait for a slot before 429')
    .option('--api-key <key>', 'accepted API key (repeat for several)', collect)
    .option('--cors-origin <origin>', 'allowed CORS origin (repeat; "*" for any)', collect)
    .option('--body-limit <bytes>', 'largest request body')
    .option('--json-max-values <n>', 'most values (arrays, objects, elements) a JSON body may hold')
    .option('--no-mmap', 'read the model into memory instead of mapping it (immune to the file changing on disk)')
    .option('--down-int8', 'Q4_0 PowerInfer files: sum the sparse down projection in 8-bit integers (faster, ~1% logit error; README "Sparse inference")')
    .option('--chat-template <file>', 'Jinja chat template overriding the model\'s')
    .option('--shutdown-grace <ms>', 'on SIGTERM, how long in-flight requests may finish')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .option('--ffn-activation <act>', 'auto|swiglu|relu_glu|drelu (README "FFN activation")')
    .option('--ffn-mode <mode>', 'auto|dense|exact|predictor (README "Sparse inference")')
    .option('--sparse-threshold <t>', "predictor threshold (default: the file's powerinfer.sparse_threshold)")
    .option('--sparse-max-batch <n>', 'decode steps with more rows run the dense FFN')
    .option('--device <device>', 'auto|cpu|cuda|emu: where the model runs (README "Hybrid CPU/GPU")')
    .option('--vram-budget <size>', 'device memory to use: bytes (8GiB, 512MiB) or a share of free memory (40%)')
    .option('--placement <file>', 'hot neurons from `relu-serve place` (.rspl) or PowerInfer (.generated.gpuidx)')
    .option('--stats <file>', 'activation statistics from `relu-serve profile`: hot neurons solved at load')
    .option('--emu-memory <size>', 'emulated device: its memory (default 8GiB)')
    .option('--emu-latency-us <us>', 'emulated device: delay before each operation')
    .action(async (o: Record<string, unknown>) => {
      const { runServe } = await import('../main.js');
      await runServe({
        configFile: o.config as string | undefined,
        flags: {
          model: o.model,
          alias: o.alias,
          host: o.host,
          port: o.port,
          parallel: o.parallel,
          ctxSize: o.ctxSize,
          threads: o.threads,
          batchSize: o.batchSize,
          maxQueue: o.maxQueue,
          apiKeys: o.apiKey,
          corsOrigins: o.corsOrigin,
          bodyLimit: o.bodyLimit,
          jsonMaxValues: o.jsonMaxValues,
          // commander defaults mmap to true; only an explicit --no-mmap may override the config.
          mmap: o.mmap === false ? false : undefined,
          downInt8: o.downInt8,
          chatTemplate: o.chatTemplate,
          shutdownGraceMs: o.shutdownGrace,
          logLevel: o.logLevel,
          ffnActivation: o.ffnActivation,
          ffnMode: o.ffnMode,
          sparseThreshold: o.sparseThreshold,
          sparseMaxBatch: o.sparseMaxBatch,
          device: o.device,
          vramBudget: o.vramBudget,
          placement: o.placement,
          stats: o.stats,
          emuMemory: o.emuMemory,
          emuLatencyUs: o.emuLatencyUs,
        },
      });
    });
}
