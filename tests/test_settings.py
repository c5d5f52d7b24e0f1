from __future__ import annotations

from pathlib import Path

import pytest

from bot.logs import RedactToken
from bot.settings import Settings, SettingsError, load_settings

ENV_VARS = (
    "BOT_TOKEN",
    "ADMIN_IDS",
    "DATABASE_PATH",
    "TELEGRAM_API_URL",
    "SUMMARY_SENTENCES",
    "SUMMARY_ALGORITHM",
    "LOG_LEVEL",
    "DATABASE_URL",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WEBHOOK_LISTEN",
    "WORKERS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.bot_token is None
    assert settings.admin_ids == frozenset()
    assert settings.database_path == Path("data/newsbot.db")
    assert settings.api_base_url == "https://api.telegram.org/bot"
    assert settings.api_file_url == "https://api.telegram.org/file/bot"


def test_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ADMIN_IDS=5\nSUMMARY_SENTENCES=4\nBOT_TOKEN=\n")
    monkeypatch.setenv("ADMIN_IDS", "1, 2")
    settings = load_settings()
    assert settings.admin_ids == frozenset({1, 2})
    assert settings.summary_sentences == 4
    assert settings.bot_token is None


def test_api_url_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    settings = load_settings()
    assert settings.api_base_url == "http://127.0.0.1:8081/bot"
    assert settings.api_file_url == "http://127.0.0.1:8081/file/bot"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADMIN_IDS", "alice,bob"),
        ("SUMMARY_SENTENCES", "zero"),
        ("SUMMARY_SENTENCES", "0"),
        ("SUMMARY_ALGORITHM", "magic"),
        ("LOG_LEVEL", "LOUD"),
        ("TELEGRAM_API_URL", "ftp://example.org"),
        ("DATABASE_URL", "mysql://newsbot:pw@db/newsbot"),
        ("DATABASE_URL", "sqlite:///"),
        ("DATABASE_URL", "data/newsbot.db"),
        ("WEBHOOK_SECRET", "has spaces"),
        ("WEBHOOK_SECRET", "x" * 257),
        ("WEBHOOK_SECRET", "semi;colon"),
        ("WORKERS", "0"),
        ("WORKERS", "65"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert "\n" not in message


def test_token_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123456:SECRET-TOKEN")
    settings = load_settings()
    assert "SECRET-TOKEN" not in repr(settings)
    assert "SECRET-TOKEN" not in str(settings.model_dump())


def test_log_filter_redacts_token() -> None:
    import logging

    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "POST %s", ("https://x/bot123:SECRET/getMe",), None
    )
    RedactToken("123:SECRET").filter(record)
    assert "SECRET" not in record.getMessage()


def test_settings_object_is_typed() -> None:
    settings = Settings(_env_file=None, admin_ids="7")  # type: ignore[call-arg, arg-type]
    assert settings.admin_ids == frozenset({7})


def test_store_url_defaults_to_the_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().store_url == "sqlite:///data/newsbot.db"
    monkeypatch.setenv("DATABASE_PATH", "/var/lib/newsbot/news.db")
    assert load_settings().store_url == "sqlite:////var/lib/newsbot/news.db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///other.db",
        "postgresql://newsbot:pw@postgres:5432/newsbot",
        "postgres://newsbot@localhost/newsbot",
    ],
)
def test_database_url_wins_over_the_path(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_PATH", "ignored.db")
    monkeypatch.setenv("DATABASE_URL", url)
    settings = load_settings()
    assert settings.database_url == url
    assert settings.store_url == url


def test_database_password_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://newsbot:HUNTER2@postgres/newsbot")
    assert "HUNTER2" not in repr(load_settings())
    monkeypatch.setenv("DATABASE_URL", "mysql://newsbot:HUNTER2@postgres/newsbot")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "HUNTER2" not in str(info.value)


def test_webhook_and_worker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.webhook_secret is None
    assert settings.workers == 1
    assert settings.webhook_listen == "0.0.0.0"  # noqa: S104
    secret = "Abc_-09" + "z" * 249  # 256 characters, every kind Telegram allows
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    monkeypatch.setenv("WORKERS", "4")
    settings = load_settings()
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == secret
    assert secret not in repr(settings)
    assert settings.workers == 4


def test_bad_webhook_secret_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "almost-right-but-for-this!")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "almost-right" not in str(info.value)
