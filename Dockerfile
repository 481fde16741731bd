# CPU image (default) or GPU image: docker build --build-arg BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 .
# (any base with Python >= 3.11; the CUDA one needs SPEECHSVC_DEVICE=cuda or auto at run time)
# Installs exactly as the README does (`make install`): Python packages and the offline models.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    SPEECHSVC_HOME=/opt/speechsvc \
    SPEECHSVC_HOST=0.0.0.0 \
    PATH=/app/.venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends make python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app
RUN make install PYTHON=python3 BROWSER=0 && rm -rf /root/.cache/pip \
 && mkdir -p /opt/speechsvc/jobs && chown -R nobody /opt/speechsvc/jobs

EXPOSE 8080 50051 9092
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD python -c \
  "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status != 200)"
USER nobody
CMD ["speechsvc", "serve"]
