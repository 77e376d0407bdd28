# krakenstream: one image for every role. The role is the command:
#   docker run IMAGE daemon run --roles gateway        (or orderbook, analysis; default: all)
# Configuration comes from KMS_<SECTION>_<KEY> environment variables (see docs/configuration.md);
# nothing secret is baked into the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid, so files in mounted volumes keep one owner across rebuilds; /data is the
# only place the daemon writes (pid and log files, and the SQLite files and generated secret
# of the embedded stack), private to that user.
RUN groupadd --system --gid 10001 kms \
 && useradd --system --uid 10001 --gid kms --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin kms \
 && install -d -o kms -g kms -m 0700 /data \
 && install -d -o kms -g kms -m 0750 /archive

# Every dependency ships a manylinux wheel: no compiler, no build tools in the image.
COPY pyproject.toml README.md /tmp/krakenstream/
COPY src /tmp/krakenstream/src
RUN pip install /tmp/krakenstream && rm -rf /tmp/krakenstream

USER kms
WORKDIR /data
ENV KMS_HOME=/data

EXPOSE 3000

# Fits the default command (every role, so the gateway too): GET /health on the configured
# port answers 200 once the gateway is up. Roles without the gateway override it (see
# docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; from krakenstream.config import load_settings, server_url; u.urlopen(server_url(load_settings()) + '/health', timeout=3)"]

ENTRYPOINT ["kms"]
CMD ["daemon", "run"]
