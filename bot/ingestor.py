"""The ingest pipeline configured from the settings, for the bot and `newsbot seed` alike.

Kept apart from bot.services so that the seed command does not import python-telegram-bot:
that import alone was about 0.45 s of every seed's start-up.
"""

from __future__ import annotations

from bot.settings import Settings
from ingest.pipeline import Ingestor
from storage.backend import StoryRepository


def make_ingestor(
    store: StoryRepository, settings: Settings, *, workers: int | None = None
) -> Ingestor:
    """The ingest pipeline over `store`, configured from the settings (bot and CLI alike)."""
    return Ingestor(
        store,
        algorithm=settings.summary_algorithm,
        sentences=settings.summary_sentences,
        max_chars=settings.summary_max_chars,
        max_story_chars=settings.max_story_chars,
        max_document_bytes=settings.max_document_bytes,
        workers=workers,
    )
