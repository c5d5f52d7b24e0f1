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
