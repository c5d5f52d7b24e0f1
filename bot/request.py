"""PTB's HTTP layer on aiohttp: the Bot API requests without httpx's per-request pool walk.

httpx's connection pool looks at every pooled connection on each request (a getpeername
syscall apiece), which at 256 connections was half the bot's CPU under load. aiohttp's
connector hands out an idle connection in constant time.

The contract is PTB's HTTPXRequest's (telegram/request/_httpxrequest.py): multipart when
files are uploaded, DEFAULT_NONE timeouts replaced by this instance's defaults
(media_write_timeout for uploads), timeouts raised as TimedOut and any other transport
failure as NetworkError. One difference: other parameters go as a JSON body, not a form.
The Bot API takes either, and form-encoding the HTML replies (urllib quotes byte by byte in
Python) cost about a tenth of the bot's CPU per update.
"""

from __future__ import annotations

import json
from typing import IO, Any, Final

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# PTB's own defaults (HTTPXRequest and ApplicationBuilder).
CONNECTION_POOL_SIZE = 256
READ_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 1.0
MEDIA_WRITE_TIMEOUT = 20.0
# For getUpdates: PTB adds the long-poll time to it; the margin is for a slow network.
GET_UPDATES_READ_TIMEOUT = 10.0
_JSON_HEADERS: Final = {"Content-Type": "application/json"}


def _sum(*parts: float | None) -> float | None:
    # A phase with no limit leaves the whole request without one.
    if any(part is None for part in parts):
        return None
    return sum(part for part in parts if part is not None)


class AiohttpRequest(BaseRequest):
    """BaseRequest on one aiohttp ClientSession, opened in initialize(), closed in shutdown().

    aiohttp has no write timeout of its own: the write timeout bounds the whole request
    (pool + connect + write + read) instead, so a request stuck while sending still ends.
    """

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = CONNECTION_POOL_SIZE,
        read_timeout: float | None = READ_TIMEOUT,
        write_timeout: float | None = WRITE_TIMEOUT,
        connect_timeout: float | None = CONNECT_TIMEOUT,
        pool_timeout: float | None = POOL_TIMEOUT,
        media_write_timeout: float | None = MEDIA_WRITE_TIMEOUT,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds the long-poll time to it for getUpdates)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session; a second call, or one after shutdown(), is fine."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the session and its connections; a no-op if not open."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See BaseRequest.do_request."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")

        files = request_data.multipart_data if request_data else None

        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = (
            self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        )
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write = self._media_write_timeout if files else self._write_timeout
        else:
            write = write_timeout
        timeout = aiohttp.ClientTimeout(
            total=_sum(pool, connect, write, read),
            # aiohttp's connect covers waiting for a free pooled connection as well.
            connect=_sum(pool, connect),
            sock_connect=connect,
            sock_read=read,
        )

        data: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None and files:
            data = _multipart(request_data.json_parameters, files)
        elif request_data is not None and (params := request_data.parameters):
            # The values as they are (numbers, objects), not each one JSON-encoded again.
            data = json.dumps(params).encode()
            headers = _JSON_HEADERS
        try:
            async with session.request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            # ServerTimeoutError and ConnectionTimeoutError are TimeoutErrors too.
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err


def _multipart(
    params: dict[str, str], files: dict[str, tuple[str, bytes | IO[bytes], str]]
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in params.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
