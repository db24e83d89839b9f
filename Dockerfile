# resobot: the bot in a slim image. Build: `docker compose build` (see README, Deployment).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    HEALTH_LISTEN=0.0.0.0:8081 \
    WEBHOOK_LISTEN=0.0.0.0:8080 \
    MPLCONFIGDIR=/tmp/matplotlib

RUN groupadd --system --gid 10001 resobot \
    && useradd --system --uid 10001 --gid resobot --home-dir /app --no-create-home --shell /usr/sbin/nologin resobot

WORKDIR /app

# Dependencies first, from the lock file (the same pins `make install` uses): a layer that is
# rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY reporting_forms ./reporting_forms
COPY services ./services
COPY storage ./storage
COPY templates ./templates
COPY docker/entrypoint.sh ./docker/entrypoint.sh
# The project from the source tree (templates/ sits next to the packages), no other packages.
RUN pip install --no-deps -e . \
    && mkdir -p /data \
    && chown resobot:resobot /data \
    && chmod 0755 /app/docker/entrypoint.sh

# The database file (SQLite), compiled files and console files: a volume, outside the package.
VOLUME ["/data"]
USER resobot

# 8080: the webhook (resobot run --webhook); 8081: /healthz, /readyz, /metrics.
EXPOSE 8080 8081

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/readyz', timeout=4)"]

# Migrations at start, then the bot; arguments go to `resobot run` (e.g. --webhook).
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD []
