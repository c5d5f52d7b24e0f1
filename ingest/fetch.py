"""Fetching a story page by URL, with a size cap and a clear message when offline."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ingest.report import IngestError

USER_AGENT = "newsbot/0.1 (+https://github.com/newsbot)"


def check_url(url: str) -> str:
    """Accept only absolute http(s) URLs."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise IngestError(f"not an http(s) URL: {url[:100]!r}")
    return parts.geturl()


def fetch_url(url: str, *, max_bytes: int, timeout: float = 15.0) -> tuple[bytes, str]:
    """Download a page (blocking; run it in a thread). Returns the bytes and the final URL."""
    # The scheme is checked by check_url: only http(s) reaches urllib.
    request = urllib.request.Request(check_url(url), headers={"User-Agent": USER_AGENT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: bytes = response.read(max_bytes + 1)
            final_url: str = response.geturl()
    except urllib.error.HTTPError as exc:
        raise IngestError(f"the site answered {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise IngestError(
            f"could not fetch {url}: {reason}. This machine may have no network; "
            "send the page as a document instead."
        ) from None
    if len(data) > max_bytes:
        raise IngestError(f"the page at {url} is larger than {max_bytes:,} bytes")
    return data, final_url
