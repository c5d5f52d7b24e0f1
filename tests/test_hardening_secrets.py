"""The token never shows: not in logs at DEBUG, not in errors, not in any reply.

A whole session runs with every logger at DEBUG and no redacting filter (bot.logs adds one
in production; this checks that nothing needs it): start-up, commands, a dropped connection
on getUpdates, a 429 on a reply, a reply that fails for good. Then every captured log record,
traceback, output stream and request text is searched for the token.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot import formatting as fmt
from bot.app import build_app, running
from bot.settings import Settings
from tests.conftest import ADMIN, USER, until_fetched
from tests.fake_bot_api import FakeBotAPI

SECRET = "7654321:AAH-sEcReT_tOkEn-value-0123456789abcdef"
SECRET_PART = SECRET.split(":")[1]


async def test_the_token_never_appears_in_logs_errors_or_replies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeBotAPI(token=SECRET)
    await api.start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(SECRET),
        admin_ids=frozenset({ADMIN}),
        database_path=tmp_path / "db.sqlite",
        telegram_api_url=api.url,
        summary_algorithm="lead",
        log_level="DEBUG",
    )
    caplog.set_level(logging.DEBUG)
    try:
        api.fault_next("getUpdates", "drop")
        api.push_message("/start", user_id=USER)
        async with running(build_app(settings, rate_limit=True)):
            await api.reply_to(USER)
            # A 429 on a reply, retried by the rate limiter.
            api.fail_next("sendMessage", retry_after=1)
            api.push_message("/latest", user_id=USER)
            await api.reply_to(USER)
            # A reply that fails for good: the handler raises and the error handler logs it.
            api.fault_next("sendMessage", "status", status=500, times=3)
            api.push_message("/stats", user_id=ADMIN)
            error = await api.reply_to(ADMIN)
            assert error.result["text"] == fmt.ERROR_REPLY
            last = api.push_message("/delete 1", user_id=USER)
            await until_fetched(api, last)
    finally:
        await api.close()

    assert [call.status for call in api.calls if not call.ok] == [599, 429, 500, 500, 500]
    assert "failed" in caplog.text  # the error was logged, with its traceback
    assert any(record.exc_info for record in caplog.records)
    out, err = capsys.readouterr()
    replies = [str(call.params.get("text", "")) for call in api.calls]
    for where, text in [("log", caplog.text), ("stdout", out), ("stderr", err)] + [
        ("reply", reply) for reply in replies
    ]:
        assert SECRET_PART not in text, f"token in {where}"
    for record in caplog.records:
        assert SECRET_PART not in record.getMessage()
        assert SECRET_PART not in repr(record.args)
    assert SECRET_PART not in repr(settings) and SECRET_PART not in str(settings)
