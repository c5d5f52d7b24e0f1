"""The `newsbot` command: run the bot, chat in the console, seed, summarise."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.seed_inputs import start_pool_early

if TYPE_CHECKING:
    from bot.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    # The command modules are imported here, not at the top: `newsbot seed`'s pool workers
    # import this module again (as the main script) and need none of them.
    from bot import cli_db, cli_related, cli_seed, cli_summarize

    parser = argparse.ArgumentParser(
        prog="newsbot",
        description="A Telegram bot that summarises news stories and finds related ones.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    subparsers.add_parser(
        "run", help="start the bot: Telegram when BOT_TOKEN is set, else the console chat"
    )
    subparsers.add_parser(
        "chat", help="talk to the bot in this terminal (or through a pipe), no Telegram needed"
    )
    cli_seed.add_parser(subparsers)
    cli_summarize.add_parser(subparsers)
    cli_db.add_parser(subparsers)
    cli_related.add_parser(subparsers)
    webhook = subparsers.add_parser(
        "webhook",
        help="set, delete or show the webhook: once per deployment, not per worker",
    )
    webhook.add_argument("action", choices=("set", "delete", "info"))
    return parser


def _run_bot(settings: Settings) -> int:
    from bot.app import run_bot

    run_bot(settings)
    return 0


def _run_console(settings: Settings) -> int:
    import asyncio
    import logging

    from bot.console import run_console

    # PTB's and the scheduler's start/stop lines are noise between a person's prompts;
    # warnings still show.
    if settings.log_level == "INFO":
        for name in ("telegram", "apscheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)

    return asyncio.run(run_console(settings, sys.stdin, sys.stdout))


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["seed"]:
        # Before the imports below (settings alone take 0.1 s), which the server's own
        # imports then overlap.
        start_pool_early(given[1:])

    from bot import cli_db, cli_related, cli_seed, cli_summarize
    from bot.logs import configure_logging
    from bot.settings import SettingsError, load_settings

    args = build_parser().parse_args(given)
    if args.command == "summarize":
        # Summaries need no settings beyond the flags; a broken .env should not block them.
        return cli_summarize.run(args)
    if args.command == "related" and args.db is not None:
        # --db names the database, so a broken .env need not block reading it.
        return cli_related.run(args, None)
    if args.command == "db":
        # Both ends are given as URLs on the command line.
        return cli_db.run(args)
    if args.command == "webhook":
        from bot import webhook

        return webhook.main([args.action])
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"newsbot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if args.command == "seed":
        return cli_seed.run(args, settings)
    if args.command == "related":
        return cli_related.run(args, settings.store_url)
    if args.command == "chat" or settings.bot_token is None:
        return _run_console(settings)
    return _run_bot(settings)
