"""Language names as sumy and punkt know them, from what stories say ("en", "English", "de")."""

from __future__ import annotations

from summarize.errors import TextError
from summarize.nltk_data import LANGUAGES

_CODES = {
    "cs": "czech",
    "da": "danish",
    "nl": "dutch",
    "en": "english",
    "et": "estonian",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "it": "italian",
    "no": "norwegian",
    "nb": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ru": "russian",
    "sl": "slovene",
    "es": "spanish",
    "sv": "swedish",
    "tr": "turkish",
}


def normalise_language(value: str | None) -> str:
    """Map a language code or name to the name sumy and punkt use; unknown -> TextError."""
    if not value or not value.strip():
        return "english"
    key = value.strip().lower().replace("_", "-")
    if key in LANGUAGES:
        return key
    code = key.split("-", 1)[0]
    if code in _CODES:
        return _CODES[code]
    raise TextError(f"unsupported language {value!r}; supported: {', '.join(LANGUAGES)}")
