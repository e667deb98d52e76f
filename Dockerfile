# One image for every role (api, worker, dispatcher); the compose file picks the command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Install the CPU build of torch FIRST and explicitly from the PyTorch CPU index: the project pins
# torch==2.13.0, and resolving that pin from PyPI would pull the multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

# Dependencies change less often than code, so they get their own layer.
COPY pyproject.toml README.m[d] ./
COPY storage/ storage/
COPY producer/ producer/
COPY worker/ worker/
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu .

# The default model is baked into the image so a worker container is self-contained; mount another
# artifact over /app/models (see docker-compose.yml) to use a different one.
COPY models/ /app/models/

RUN useradd --create-home --uid 10001 shiti
USER shiti

EXPOSE 8000
CMD ["shiti", "serve", "--host", "0.0.0.0", "--port", "8000"]
