# One image for every role: `web` (gunicorn receiver, the default) and `worker` (events + timers).
#   docker build -t sla-connector .
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 -v $PWD/config.yaml:/etc/sla-connector/config.yaml \
#       -p 8000:8000 sla-connector            # receiver
#   docker run --rm ... sla-connector worker  # worker with the timer scheduler
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SLA_CONNECTOR_CONFIG=/etc/sla-connector/config.yaml \
    SLA_CONNECTOR_BIND=0.0.0.0:8000

WORKDIR /app
# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY sla/__init__.py sla/__init__.py
COPY adapters/__init__.py adapters/__init__.py
COPY connector/__init__.py connector/__init__.py
RUN pip install . && pip uninstall -y sla-connector
COPY sla sla
COPY adapters adapters
COPY connector connector
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin sla \
    && mkdir -p /etc/sla-connector /var/lib/sla-connector \
    && chown sla /var/lib/sla-connector
COPY examples/config.yaml /etc/sla-connector/config.yaml

USER sla
WORKDIR /var/lib/sla-connector
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" \
        || exit 1
ENTRYPOINT ["sla-connector"]
CMD ["web"]
