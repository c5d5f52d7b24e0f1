# The bot as a container: `newsbot run` by default (docker-compose.yml runs several).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # The offline sentence-splitter tables are written here on first use.
    NEWSBOT_NLTK_DATA=/home/newsbot/nltk_data

WORKDIR /app
# Only what the package needs; the dependencies layer is rebuilt when any of it changes.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY storage ./storage
COPY summarize ./summarize
COPY ingest ./ingest
COPY samples ./samples
# data/ is where DATABASE_PATH points when no DATABASE_URL is given (a single container).
RUN pip install . \
    && useradd --create-home --uid 10001 newsbot \
    && mkdir -p /app/data && chown newsbot /app/data
USER newsbot

# The webhook server (WEBHOOK_PORT); the reverse proxy terminates TLS in front of it.
EXPOSE 8443
CMD ["newsbot", "run"]
