# relu-serve, CUDA image: the same layout as docker/cpu.Dockerfile, with the addon built by
# nvcc. Build and run from the repository root (the host needs the NVIDIA driver and the
# NVIDIA Container Toolkit):
#   docker build -f docker/cuda.Dockerfile -t relu-serve:cuda .
#   docker run --rm --gpus all -p 8080:8080 -v "$PWD/my-models:/models:ro" \
#     -e RELU_SERVE_MODEL=/models/model.gguf -e RELU_SERVE_VRAM_BUDGET=90% relu-serve:cuda
# --build-arg CUDA_ARCHITECTURES="86" (say) builds for other GPUs; the default, 80;90, is
# the addon's own (A100, H100/H200). The runtime stage starts from the CUDA *base* image:
# the kernels link the CUDA runtime statically (kernels/cuda/CMakeLists.txt), so only the
# driver library is needed, and the container toolkit mounts it. A build without a GPU
# still loads and serves on the CPU (RELU_SERVE_DEVICE=auto falls back).
# test/deploy/dockerfiles.test.ts checks this file against the repository.

FROM node:20.20.2-bookworm-slim AS node

FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS build
ARG CUDA_ARCHITECTURES="80;90"
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ make \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY addon ./addon
COPY kernels ./kernels
COPY tools ./tools
COPY server ./server
# What `npm ci` does (its postinstall build), with the GPU architectures passed to CMake;
# the last line fails the build if nvcc was not used.
RUN npm ci --ignore-scripts \
 && npx cmake-js compile --directory addon --out build --log-level warn \
      --CDCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
 && npx tsc -p tsconfig.json \
 && node -e "import('./dist/server/engine/binding.js').then(m => { if (!m.native.cuda.compiled) { console.error('addon built without CUDA'); process.exit(1); } })"
RUN npm prune --omit=dev --ignore-scripts

FROM nvidia/cuda:12.4.1-base-ubuntu22.04
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 relu \
 && useradd --system --uid 10001 --gid relu --home-dir /app --shell /usr/sbin/nologin relu \
 && mkdir -p /models && chown relu:relu /models
WORKDIR /app
COPY package.json ./
COPY configs ./configs
COPY models/bamboo-kjv-mini.gguf ./models/bamboo-kjv-mini.gguf
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/server ./dist/server
COPY --from=build /app/build/Release/relu_serve.node ./build/Release/relu_serve.node
ENV RELU_SERVE_HOST=0.0.0.0 \
    RELU_SERVE_PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=180s --retries=3 \
  CMD ["node", "docker/healthcheck.mjs"]
# The server itself is PID 1 (not npm), so SIGTERM reaches its drain handler directly.
CMD ["node", "dist/server/cli/main.js", "serve"]
