# The runtime image: the package and its offline models, nothing from the dev, bench or train extras; runs as an
# unprivileged user. Two stages: `build` installs into a virtual environment and assembles the models, `runtime`
# (the default target) copies only those.
#   CPU:  docker build -t speechsvc .
#   CUDA: docker build -t speechsvc:cuda --build-arg BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#           --build-arg DEVICE=cuda .
# (any base with Python >= 3.11 from its package manager; ctranslate2's wheels use the base's CUDA and cuDNN).
# deploy/compose.yaml and deploy/k8s run it; docs/deployment.md says how.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 SPEECHSVC_HOME=/opt/speechsvc
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
# grpcio-tools (a build requirement) generates the gRPC stubs while the wheel is built.
RUN python3 -m venv /app/.venv \
 && /app/.venv/bin/pip install --upgrade pip \
 && /app/.venv/bin/pip install /src \
 && /app/.venv/bin/speechsvc models install

FROM ${BASE} AS runtime
ARG DEVICE=auto
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 speechsvc \
 && useradd --system --uid 10001 --gid 10001 --home-dir /opt/speechsvc --shell /usr/sbin/nologin speechsvc
COPY --from=build /app/.venv /app/.venv
COPY --from=build --chown=10001:10001 /opt/speechsvc/models /opt/speechsvc/models
# Bound to every interface, so authentication is required (spelled out). Keys come from a mounted secret; job
# files from a volume every replica shares (several machines: SPEECHSVC_JOBS_DB=postgresql://...).
ENV PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    SPEECHSVC_HOME=/opt/speechsvc \
    SPEECHSVC_HOST=0.0.0.0 \
    SPEECHSVC_AUTH=required \
    SPEECHSVC_DEVICE=${DEVICE} \
    SPEECHSVC_KEYS_FILE=/run/secrets/speechsvc_keys \
    SPEECHSVC_JOBS_DIR=/var/lib/speechsvc/jobs \
    SPEECHSVC_AUDIT_LOG=-
RUN mkdir -p /var/lib/speechsvc/jobs \
 && chown -R 10001:10001 /var/lib/speechsvc \
 && chmod 0700 /var/lib/speechsvc/jobs
WORKDIR /opt/speechsvc
EXPOSE 8080 50051 9092
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s CMD ["python3", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status != 200)"]
VOLUME ["/var/lib/speechsvc/jobs"]
USER 10001:10001
# SIGTERM drains: new calls are refused (/readyz 503), open calls finish their utterances within
# SPEECHSVC_SHUTDOWN_GRACE_S; give the container longer than that to stop (compose stop_grace_period,
# Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
CMD ["speechsvc", "serve"]
