# One image for every role: `tap-service serve` (API), `tap-service worker` (Celery),
# `tap-service load-tap-schema` (TAP_SCHEMA job), `tap-service standin` (demo Qserv stand-in).
# Build: docker build -t tap-service .   Run: see docker-compose.yml and docs/deployment.md.

FROM python:3.12-slim AS build
RUN pip install --no-cache-dir 'uv>=0.5,<1'
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first (cached while only the code changes), exactly as locked in uv.lock.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY tap_service ./tap_service
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.12-slim
RUN useradd --system --uid 10001 --create-home --home-dir /app tap
COPY --from=build /opt/venv /opt/venv
COPY schema /app/schema
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TAP_HOST=0.0.0.0 \
    TAP_PORT=8000 \
    TAP_DATA_DIR=/app/data
WORKDIR /app
USER 10001
EXPOSE 8000
# The API answers /availability once it serves; workers are checked by the orchestrator.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/tap/availability' % os.environ.get('TAP_PORT','8000'), timeout=2)" || exit 1
# SIGTERM reaches the Python process directly (exec form): uvicorn/Celery shut down gracefully.
ENTRYPOINT ["tap-service"]
CMD ["serve"]
