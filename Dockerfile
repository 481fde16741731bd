# CPU image (default) or GPU image: docker build --build-arg BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 .
# (any base with Python >= 3.11; the CUDA one needs SPEECHSVC_DEVICE=cuda or auto at run time)
# Installs exactly as the README does (`make install`): Python packages and the offline models.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

# Bound to every interface, so authentication is required (SPEECHSVC_AUTH=auto would say the same; it is spelled
# out). Keys and the audit log live in volumes owned by the service user, 0700:
#   docker run -v speechsvc-secrets:/opt/speechsvc/secrets IMAGE speechsvc keys create --tenant T --scopes stream
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    SPEECHSVC_HOME=/opt/speechsvc \
    SPEECHSVC_HOST=0.0.0.0 \
    SPEECHSVC_AUTH=required \
    SPEECHSVC_KEYS_FILE=/opt/speechsvc/secrets/keys.json \
    SPEECHSVC_AUDIT_LOG=/opt/speechsvc/audit/audit.log \
    PATH=/app/.venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends make python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app
RUN make install PYTHON=python3 BROWSER=0 && rm -rf /root/.cache/pip \
 && mkdir -p /opt/speechsvc/jobs /opt/speechsvc/secrets /opt/speechsvc/audit \
 && chown -R nobody /opt/speechsvc/jobs /opt/speechsvc/secrets /opt/speechsvc/audit \
 && chmod 0700 /opt/speechsvc/jobs /opt/speechsvc/secrets /opt/speechsvc/audit

EXPOSE 8080 50051 9092
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD python -c \
  "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status != 200)"
VOLUME ["/opt/speechsvc/jobs", "/opt/speechsvc/secrets", "/opt/speechsvc/audit"]
USER nobody
CMD ["speechsvc", "serve"]
