"""One typed settings object: environment first, then `.env`, then defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OFFICIAL_API_URL = "https://api.telegram.org"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


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
    telegram_api_url: str = OFFICIAL_API_URL
    summary_sentences: int = Field(default=3, ge=1, le=20)
    summary_max_chars: int | None = Field(default=None, ge=80, le=4000)
    summary_algorithm: str = "lead-rank"
    log_level: LogLevel = "INFO"
    webhook_url: str | None = None
    webhook_port: int = Field(default=8443, ge=1, le=65535)
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
