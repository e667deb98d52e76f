# One image for every role (api, worker, dispatcher); the compose file picks the command.

# The page's one library (Apache ECharts), from the lock file scripts/bootstrap.sh installs it with.
FROM node:20-slim AS page-vendor
WORKDIR /vendor
COPY producer/static/vendor/package.json producer/static/vendor/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SHITI_MODELS_DIR=/app/models

WORKDIR /app

# No torch: workers serve the ONNX artifact with onnxruntime, the API never loads a model.
# (Training and conversion need `pip install '.[train]'` with the CPU torch wheel, outside this image.)
# Dependencies change less often than code, so they get their own layer.
COPY pyproject.toml README.m[d] ./
COPY storage/ storage/
COPY producer/ producer/
COPY worker/ worker/
COPY --from=page-vendor /vendor/node_modules/echarts/dist/echarts.min.js producer/static/vendor/echarts.min.js
RUN pip install . && ! python -c "import torch" 2>/dev/null

# The default model is baked into the image so a worker container is self-contained
# (SHITI_MODELS_DIR=/app/models); docker-compose.yml mounts a host folder of models at /models instead.
COPY models/ /app/models/

RUN useradd --create-home --uid 10001 shiti
USER shiti

EXPOSE 8000
CMD ["shiti", "serve", "--host", "0.0.0.0", "--port", "8000"]
