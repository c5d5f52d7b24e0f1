"""What admins do: add stories (text, URL, document), delete them, see store stats."""

from __future__ import annotations

import logging
from pathlib import PurePath

from telegram import Update

from bot import formatting as fmt
from bot.handlers import command_args, parse_id, retrying, send
from bot.services import NewsContext
from ingest.report import IngestError, IngestReport

logger = logging.getLogger(__name__)

DOCUMENT_SUFFIXES = frozenset(
    {".txt", ".md", ".json", ".jsonl", ".xml", ".rss", ".atom", ".html", ".htm"}
)
_NOT_ADMIN = "Only admins can do that."


def _admin(update: Update, context: NewsContext) -> bool:
    """Whether an admin sent this command: the sender, never the author of a forward."""
    user = update.effective_user
    message = update.effective_message
    # A forwarded command is someone else's words passed on: never run it as an order, even
    # when an admin forwards it (the sender of a forward is already effective_user, so an
    # admin's forwarded message sent by anyone else counts as theirs).
    if message is not None and message.forward_origin is not None:
        return False
    return user is not None and not user.is_bot and context.services.is_admin(user.id)


def _may_send_documents(update: Update, context: NewsContext) -> bool:
    """Whether the sender is an admin; a document an admin forwards is theirs to store."""
    user = update.effective_user
    return user is not None and not user.is_bot and context.services.is_admin(user.id)


def _looks_like_url(text: str) -> bool:
    return len(text.split()) == 1 and text.lower().startswith(("http://", "https://"))


async def add(update: Update, context: NewsContext) -> None:
    """/add <text or URL>, or /add in reply to a message: store a story."""
    if not _admin(update, context):
        await send(update, context, fmt.hint(_NOT_ADMIN))
        return
    message = update.effective_message
    # The text after the command as typed: context.args would join it with single spaces and
    # lose the "Title, blank line, body" layout the parser reads.
    raw = message.text if message is not None and message.text else ""
    text = raw.split(maxsplit=1)[1].strip() if len(raw.split(maxsplit=1)) > 1 else ""
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
    # Subscribers hear of new stories now, not at the next periodic push.
    await context.services.after_ingest(report.added)
    await send(update, context, fmt.render_ingest(report))


def _too_big(name: str, size: int, limit: int) -> fmt.Reply:
    return fmt.hint(f"Not stored: {name} is {size:,} bytes; the limit is {limit:,}.")


async def document(update: Update, context: NewsContext) -> None:
    """A document sent in a private chat: store the stories in it (admins only)."""
    message = update.effective_message
    doc = message.document if message is not None else None
    if doc is None:
        return
    # Every refusal comes before get_file: nothing is downloaded for a request we refuse.
    if not _may_send_documents(update, context):
        await send(update, context, fmt.hint("Only admins can add stories."))
        return
    name = doc.file_name or "document"
    suffix = PurePath(name).suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        allowed = " ".join(sorted(DOCUMENT_SUFFIXES))
        await send(update, context, fmt.hint(f"Not stored: {name} is not one of {allowed}."))
        return
    limit = context.services.settings.max_document_bytes
    if (doc.file_size or 0) > limit:
        await send(update, context, _too_big(name, doc.file_size or 0, limit))
        return
    # Both are plain reads, so a timeout is worth another try: an admin's upload is not lost
    # to one bad moment of the network.
    file = await retrying(doc.get_file, idempotent=True)
    # The message may leave the size out (it is optional); getFile says it before a byte is
    # downloaded.
    if (file.file_size or 0) > limit:
        await send(update, context, _too_big(name, file.file_size or 0, limit))
        return
    data = bytes(await retrying(file.download_as_bytearray, idempotent=True))
    try:
        report = await context.services.ingestor.ingest_bytes(data, filename=name)
    except IngestError as exc:
        await send(update, context, fmt.hint(f"Not stored: {exc}"))
        return
    # Subscribers hear of new stories now, not at the next periodic push.
    await context.services.after_ingest(report.added)
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
