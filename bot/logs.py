"""Logging set-up that keeps the bot token out of every record."""

from __future__ import annotations

import logging

from bot.settings import Settings


class RedactToken(logging.Filter):
    """Replace the token wherever it appears (request URLs carry it)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token in message:
            record.msg = message.replace(self._token, "<token>")
            record.args = None
        return True


def configure_logging(settings: Settings) -> None:
    """Console logging at LOG_LEVEL with the token redacted."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request URL, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if settings.bot_token is not None:
        redact = RedactToken(settings.bot_token.get_secret_value())
        for handler in logging.getLogger().handlers:
            handler.addFilter(redact)
