# relu-serve, CPU image. Build and run from the repository root:
#   docker build -f docker/cpu.Dockerfile -t relu-serve:cpu .
#   docker run --rm -p 8080:8080 relu-serve:cpu                      # the embedded default model
#   docker run --rm -p 8080:8080 -v "$PWD/my-models:/models:ro" \
#     -e RELU_SERVE_MODEL=/models/model.gguf relu-serve:cpu           # a model from a volume
# Settings are RELU_SERVE_* variables (configs/README.md). Three stages: `build` has the
# toolchain and builds the addon and dist/; `deps` installs the production dependencies
# only; the runtime stage holds neither compiler nor dev dependencies and runs as uid 10001.
# test/deploy/dockerfiles.test.ts checks this file against the repository.

FROM node:20.20.2-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY addon ./addon
COPY kernels ./kernels
COPY tools ./tools
COPY server ./server
# npm ci runs `npm run build`: cmake-js builds build/Release/relu_serve.node, tsc builds dist/.
RUN npm ci

FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the postinstall build already ran in the build stage.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:20.20.2-bookworm-slim
RUN groupadd --system --gid 10001 relu \
 && useradd --system --uid 10001 --gid relu --home-dir /app --shell /usr/sbin/nologin relu \
 && mkdir -p /models && chown relu:relu /models
WORKDIR /app
COPY package.json ./
COPY configs ./configs
COPY models/bamboo-kjv-mini.gguf ./models/bamboo-kjv-mini.gguf
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/server ./dist/server
COPY --from=build /app/build/Release/relu_serve.node ./build/Release/relu_serve.node
ENV RELU_SERVE_HOST=0.0.0.0 \
    RELU_SERVE_PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "docker/healthcheck.mjs"]
# The server itself is PID 1 (not npm), so SIGTERM reaches its drain handler directly.
CMD ["node", "dist/server/cli/main.js", "serve"]
