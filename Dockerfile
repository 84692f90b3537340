# pairgen worker image: everything a worker needs is installed here, at build time, so no node
# downloads anything when it starts (npm packages, onnxruntime's CUDA provider, the converted face
# models, fonts). Teacher models are not in the image: mount them, and point teacher.model at them.
#
#   docker build -t pairgen-worker:cpu .                          (CPU: node:20-bookworm-slim)
#   docker build --build-arg VARIANT=cuda -t pairgen-worker:cuda . (CUDA 12 + cuDNN 9, runtime.execution_providers: [cuda, cpu])
#   docker run --rm pairgen-worker:cpu check /models/pipeline.yaml
#   docker run --rm --gpus 1 -v /models:/models pairgen-worker:cuda work s3://bucket/runs/x --index 0 --count 8
#
# The install steps are the Makefile's own targets (test/launch/dockerfile.test.ts keeps them in step);
# the variants differ only in their base and in ONNXRUNTIME_NODE_INSTALL (docs/gpu.md).
ARG VARIANT=cpu

FROM node:20-bookworm-slim AS base-cpu
# The CPU provider ships inside onnxruntime-node; skip the CUDA download.
ENV ONNXRUNTIME_NODE_INSTALL=skip

# CUDA 12 runtime libraries and cuDNN 9 (what onnxruntime-node 1.30's CUDA provider links against); a
# CUDA 13 driver runs them too. Node 20 comes from the official image, the same build as the CPU variant.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS base-cuda
COPY --from=node:20-bookworm-slim /usr/local/bin/node /usr/local/bin/node
COPY --from=node:20-bookworm-slim /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
# npm's install script downloads libonnxruntime_providers_{shared,cuda,tensorrt}.so (NuGet) at build time.
ENV ONNXRUNTIME_NODE_INSTALL=cuda12

FROM base-${VARIANT} AS worker
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /opt/pairgen
# make runs the Makefile's install targets; ca-certificates for npm's and NuGet's TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# npm packages first (their layer is rebuilt only when the lockfile changes).
COPY Makefile package.json package-lock.json .npmrc ./
RUN make node_modules/.pairgen-install-stamp ONNXRUNTIME_NODE_INSTALL="$ONNXRUNTIME_NODE_INSTALL"

# The CUDA variant: the provider library is there (npm releases that skip dependencies' install
# scripts leave it to the explicit run of onnxruntime-node's script) and every library it links
# resolves in the image (libcuda.so.1 is the host driver's, mounted at run time by the NVIDIA runtime).
RUN if [ "$ONNXRUNTIME_NODE_INSTALL" != skip ]; then \
      lib=node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so; \
      test -f "$lib" || node node_modules/onnxruntime-node/script/install.js; \
      test -f "$lib" || { echo "$lib was not installed"; exit 1; }; \
      missing="$(ldd "$lib" | grep 'not found' | grep -v 'libcuda\.so' || true)"; \
      if [ -n "$missing" ]; then echo "$lib needs libraries missing from the image:"; echo "$missing"; exit 1; fi; \
    fi

# The sources, then the rest of `make setup`: fonts for the pictures' text, the face models converted
# to ONNX (into .cache/models, read-only from here on). -o: the npm step above is done.
COPY . .
RUN make fonts models -o node_modules/.pairgen-install-stamp \
 && rm -rf /var/lib/apt/lists/*

# `pairgen` on PATH: the launch files `pairgen emit` writes run `pairgen work ...` in this image.
ENV AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
RUN ln -s /opt/pairgen/bin/pairgen.js /usr/local/bin/pairgen \
 && useradd --system --uid 10001 --home-dir /opt/pairgen --shell /usr/sbin/nologin pairgen
USER pairgen
ENTRYPOINT ["pairgen"]
CMD ["--help"]
