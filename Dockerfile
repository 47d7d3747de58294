# syntax=docker/dockerfile:1
# The RCA platform image: the `rca` console script on a slim Python, CPU-only PyTorch, non-root.
#
#   docker build --build-arg TORCH_INDEX_URL=<PyTorch's CPU wheel index> -t rca-platform:0.1.0 .
#
# TORCH_INDEX_URL is PyTorch's own CPU wheel index: the index URL that PyTorch's "Get started"
# selector prints for Linux + pip + CPU. torch from the default index is the CUDA build (several
# GB of CUDA libraries an RCA server does not use), so the build refuses to run without it.
# The runtime image runs as uid/gid 10001 (the Helm chart's podSecurityContext uses the same ids).

# python:3.11-slim-bookworm, pinned by digest (multi-arch index).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:b18992999dbe963a45a8a4da40ac2b1975be1a776d939d098c647482bcad5cba

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL
# The version pyproject.toml pins; the CPU wheel's version is 2.13.0+cpu, which satisfies it.
ARG TORCH_VERSION=2.13.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN test -n "$TORCH_INDEX_URL" \
    || { echo "pass --build-arg TORCH_INDEX_URL=<PyTorch's CPU wheel index>" >&2; exit 1; }
RUN python -m venv /opt/rca
ENV PATH=/opt/rca/bin:$PATH
# CPU torch first, from PyTorch's index only. The project install below then finds
# torch==2.13.0 already satisfied and takes nothing from the default index for it.
RUN pip install --index-url "$TORCH_INDEX_URL" "torch==${TORCH_VERSION}"
# gcc builds the compiled OTLP decoder (rca/ingest/_otlp_wire.c); only the build stage has it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip install . \
    && python -c "import torch, rca; assert torch.version.cuda is None, 'CUDA build of torch'" \
    && python -c "from rca.ingest.otlp_decode import DECODER; assert DECODER == 'compiled'" \
    && ! pip list 2>/dev/null | grep -i '^nvidia-'

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 rca \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin rca \
    && mkdir -p /var/lib/rca \
    && chown 10001:10001 /var/lib/rca
COPY --from=build /opt/rca /opt/rca
ENV PATH=/opt/rca/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
# The SQLite incident store's default directory (a volume in Kubernetes).
VOLUME ["/var/lib/rca"]
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["rca"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
