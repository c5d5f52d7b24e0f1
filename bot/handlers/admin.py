"""What admins do: add stories (text, URL, document), delete them, see store stats."""

from __future__ import annotations

import logging
from pathlib import PurePath

from telegram import Update

from bot import formatting as fmt
from bot.handlers import command_args, parse_id, send
from bot.services import NewsContext
from ingest.report import IngestError, IngestReport

logger = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = frozenset(
    {".txt", ".md", ".json", ".jsonl", ".xml", ".rss", ".atom", ".html", ".htm"}
)
_NOT_ADMIN = "Only admins can do that."


def _admin(update: Update, context: NewsContext) -> bool:
    user = update.effective_user
    return context.services.is_admin(user.id if user else None)


def _looks_like_url(text: str) -> bool:
    return len(text.split()) == 1 and text.lower().startswith(("http://", "https://"))


async def add(update: Update, context: NewsContext) -> None:
    """/add <text or URL>, or /add in reply to a message: store a story."""
    if not _admin(update, context):
        await send(update, context, fmt.hint(_NOT_ADMIN))
        return
    text = command_args(context)
    message = update.effective_message
    replied = message.reply_to_message if message is not None else None
    if not text and replied is not None:
        text = (replied.text or replied.caption or "").strip()
    if not text:
        await send(
            update, context, fmt.hint("Usage: /add <text or URL>, or reply /add to a message.")
        )
        return
    ingestor = context.services.ingestor
    try:
        report: IngestReport
        if _looks_like_url(text):
            report = await ingestor.ingest_url(text)
        else:
            report = await ingestor.ingest_text(text)
    except IngestError as exc:
        await send(update, context, fmt.hint(f"Not stored: {exc}"))
        return
    await send(update, context, fmt.render_ingest(report))


async def document(update: Update, context: NewsContext) -> None:
    """A document sent in a private chat: store the stories in it (admins only)."""
    message = update.effective_message
    doc = message.document if message is not None else None
    if doc is None:
        return
    # Every refusal comes before get_file: nothing is downloaded for a request we refuse.
    if not _admin(update, context):
        await send(update, context, fmt.hint("Only admins can add stories."))
        return
    name = doc.file_name or "document"
    suffix = PurePath(name).suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        allowed = " ".join(sorted(DOCUMENT_SUFFIXES))
        await send(update, context, fmt.hint(f"Not stored: {name} is not one of {allowed}."))
        return
    limit = context.services.settings.max_document_bytes
    if doc.file_size is not None and doc.file_size > limit:
        await send(
            update,
            context,
            fmt.hint(f"Not stored: {name} is {doc.file_size:,} bytes; the limit is {limit:,}."),
        )
        return
    file = await doc.get_file()
    data = bytes(await file.download_as_bytearray())
    try:
        report = await context.services.ingestor.ingest_bytes(data, filename=name)
    except IngestError as exc:
        await send(update, context, fmt.hint(f"Not stored: {exc}"))
        return
    await send(update, context, fmt.render_ingest(report))


async def delete(update: Update, context: NewsContext) -> None:
    """/delete <id>: delete one story."""
    if not _admin(update, context):
        await send(update, context, fmt.hint(_NOT_ADMIN))
        return
    story_id = parse_id(command_args(context))
    if story_id is None:
        await send(update, context, fmt.hint("Usage: /delete <id>, e.g. /delete 12"))
        return
    deleted = await context.services.store.delete(story_id)
    await send(update, context, fmt.render_deleted(story_id, deleted))


async def stats(update: Update, context: NewsContext) -> None:
    """/stats: stories, sources, last ingest, database size, uptime."""
    if not _admin(update, context):
        await send(update, context, fmt.hint(_NOT_ADMIN))
        return
    result = await context.services.stats()
    await send(update, context, fmt.render_stats(result.store, result.uptime))
