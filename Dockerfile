# syntax=docker/dockerfile:1
# The one image every edgeship component runs in (edgeship.image names it:
# EDGESHIP_IMAGE, default edgeship:<package version>). Build: make image; load: make kind-load.
#
# Base: Debian 12 (bookworm) slim, Python 3.11, pinned by digest (the multi-arch index of the
# python:3.11.13-slim-bookworm tag). bookworm's glibc 2.36 is what the pinned TF/TFX wheels
# were built and tested against here. Refresh with: docker buildx imagetools inspect python:3.11.13-slim-bookworm
FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1 AS base

# ---- build: resolve and install the pinned stack into a venv (uv and pip stay here) ----
FROM base AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
RUN pip install uv==0.13.9 && python -m venv --without-pip /opt/venv
WORKDIR /src
# Dependencies first, from the lock alone, so code edits do not rebuild this ~2 GB layer.
COPY requirements.lock ./
RUN grep -E '^(tensorflow|tf-keras|tensorflow-data-validation|tensorflow-model-analysis|tfx-bsl|apache-beam|kfp|protobuf)==' requirements.lock > /tmp/heavy.txt \
    && uv pip install --python /opt/venv/bin/python -c requirements.lock -r /tmp/heavy.txt
COPY pyproject.toml README.md ./
COPY edgeship ./edgeship
COPY components ./components
COPY pipelines ./pipelines
COPY edge_pusher ./edge_pusher
COPY device ./device
COPY tfx_components ./tfx_components
# Non-editable: the image carries the package, not a link to /src. The check runs isolated (-I),
# so it imports the installed edgeship, not the source folders beside it.
RUN uv pip install --python /opt/venv/bin/python -c requirements.lock '.[pipelines]' \
    && /opt/venv/bin/python -I -c "import edgeship.components, edgeship.pipelines, \
edgeship.edge_pusher, edgeship.device, kfp, tfx_bsl"

# ---- runtime: the venv on a clean base, no uv/pip/compilers, non-root ----
FROM base AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="edgeship" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="edgeship pipeline components (TF, TFDV, TFMA, KFP, LiteRT)" \
      org.opencontainers.image.licenses="Apache-2.0"
# The signing-key folder the push step and the refresh CronJob read (edgeship.pipelines.cluster):
# online keys are a Secret mounted at keys/online, the public root a ConfigMap at root/; these
# links make keys/ a complete `edgeship keys init` folder although volumes are flat.
# pip/setuptools/wheel go too: nothing in this image installs packages at run time.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && groupadd --system --gid 10001 edgeship \
    && useradd --system --uid 10001 --gid edgeship --create-home --home-dir /home/edgeship edgeship \
    && mkdir -p /opt/edgeship/keys/online /opt/edgeship/root \
    && ln -s /opt/edgeship/root/root.json /opt/edgeship/keys/root.json \
    && ln -s /opt/edgeship/root /opt/edgeship/keys/root_history
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    HOME=/home/edgeship
USER 10001:10001
WORKDIR /home/edgeship
# KFP replaces the command with its launcher; run alone, the image shows the CLI.
HEALTHCHECK NONE
CMD ["edgeship", "--help"]
