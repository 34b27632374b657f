# marketbot: the bot in a slim image, run as a non-root user.
#   docker build -t marketbot .
#   docker run --env-file .env marketbot run --platform discord
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin marketbot

WORKDIR /app
COPY pyproject.toml README.md manifest.yaml ./
COPY bot ./bot
COPY handlers ./handlers
COPY config ./config
COPY deploy/entrypoint.sh /usr/local/bin/marketbot-entrypoint
RUN pip install . && chmod 0755 /usr/local/bin/marketbot-entrypoint

USER marketbot
WORKDIR /home/marketbot
# The SQLite default lands here; set MARKETBOT_DB_URL to PostgreSQL for anything shared.
ENV MARKETBOT_DB_URL=sqlite:////home/marketbot/marketbot.db
# Slack HTTP mode listens here (MARKETBOT_SLACK_PORT).
EXPOSE 3000

# Healthy while this container's instance reports to the store (marketbot status exits 1 when
# it has stopped reporting); the first reports come within seconds of start.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD marketbot status --host "$(hostname)" > /dev/null || exit 1

ENTRYPOINT ["marketbot-entrypoint"]
CMD ["run", "--platform", "discord"]
