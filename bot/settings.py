"""One typed settings object: environment first, then `.env`, then defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OFFICIAL_API_URL = "https://api.telegram.org"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# What Telegram accepts as setWebhook's secret_token.
WEBHOOK_SECRET_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")
MAX_WORKERS: Final = 64


class SettingsError(Exception):
    """A setting with a bad value; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    bot_token: SecretStr | None = None
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    database_path: Path = Path("data/newsbot.db")
    # sqlite:///path or postgresql://user:password@host/db; wins over DATABASE_PATH. Left out
    # of repr: the URL may carry a password.
    database_url: str | None = Field(default=None, repr=False)
    telegram_api_url: str = OFFICIAL_API_URL
    summary_sentences: int = Field(default=3, ge=1, le=20)
    summary_max_chars: int | None = Field(default=None, ge=80, le=4000)
    summary_algorithm: str = "lead-rank"
    log_level: LogLevel = "INFO"
    webhook_url: str | None = None
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    # Every interface by default: behind a reverse proxy or in a container the proxy is not
    # on localhost.
    webhook_listen: str = "0.0.0.0"  # noqa: S104
    # Worker processes sharing Telegram's outgoing limits (each takes 1/workers of them).
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    max_document_bytes: int = Field(default=5_000_000, ge=1_000)
    max_story_chars: int = Field(default=200_000, ge=1_000)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(part.lstrip("-").isdigit() for part in parts):
                raise ValueError("expected comma-separated Telegram user ids, e.g. 123,456")
            return frozenset(int(part) for part in parts)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("bot_token")
    @classmethod
    def _empty_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        # Imported here, like ALGORITHMS below: settings load before the storage drivers.
        from storage.backend import SQLITE_PREFIX, is_postgres_url

        if value is None or not value.strip():
            return None
        value = value.strip()
        # The messages never repeat the value: it may hold a password.
        if value.startswith(SQLITE_PREFIX):
            if not value.removeprefix(SQLITE_PREFIX) or value.endswith("/"):
                raise ValueError("a sqlite URL needs a file, e.g. sqlite:///data/newsbot.db")
            return value
        if is_postgres_url(value):
            return value
        raise ValueError("expected sqlite:///path or postgresql://user:password@host:5432/database")

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not WEBHOOK_SECRET_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError("Telegram accepts 1-256 characters of A-Z a-z 0-9 _ -")
        return value

    @field_validator("summary_algorithm")
    @classmethod
    def _check_algorithm(cls, value: str) -> str:
        # Imported here: settings load before anything heavy, and only this check needs it.
        from summarize.summarizers import ALGORITHMS

        name = value.strip().lower()
        if name not in ALGORITHMS:
            raise ValueError(f"unknown algorithm; choose one of {', '.join(sorted(ALGORITHMS))}")
        return name

    @property
    def store_url(self) -> str:
        """DATABASE_URL when set, else the sqlite:/// URL of DATABASE_PATH."""
        from storage.backend import sqlite_url

        return self.database_url or sqlite_url(self.database_path)

    @property
    def api_base_url(self) -> str:
        return f"{self.telegram_api_url}/bot"

    @property
    def api_file_url(self) -> str:
        return f"{self.telegram_api_url}/file/bot"


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation failure into one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first["loc"] else "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"bad setting {variable}: {message}") from None
