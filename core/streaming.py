"""A streaming response that streams under ASGI too, for long bodies produced by a synchronous generator.

Django's :class:`~django.http.StreamingHttpResponse` given a synchronous iterator streams it under WSGI, but under
ASGI (``daphne``, how the server runs) it first reads the whole iterator into a list in a worker thread and only
then sends it: the client waits for the last row before the first byte, and the server holds the whole body in
memory. :class:`SyncStreamingResponse` keeps the synchronous iterator (the ORM is synchronous) and, under ASGI,
pulls it one piece at a time in the request's own thread, so each piece is sent as soon as it is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse

#: Bytes gathered before a piece is handed to the server: fewer, larger writes (and thread hops under ASGI) than
#: one per row, while memory stays bounded by this size.
PIECE_BYTES = 64 * 1024

def pieces(parts: Iterable[str | bytes], size: int = PIECE_BYTES) -> Iterator[bytes]:
    """Join small text or byte parts into pieces of about ``size`` bytes (the last may be smaller).

    The first part is passed on at once, so the client gets the first byte (and the headers) without waiting for
    a full piece.

    Args:
        parts: The body, in parts (rows).
        size: Bytes per piece.

    Yields:
        The body in pieces, UTF-8 encoded.
    """
    buffer: list[bytes] = []
    held = 0
    first = True
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        if first:
            first = False
            yield data
            continue
        buffer.append(data)
        held += len(data)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


def _next_piece(iterator: Iterator[bytes]) -> bytes | None:
    """The iterator's next piece, or None at the end (StopIteration cannot cross ``sync_to_async``)."""
    return next(iterator, None)


class SyncStreamingResponse(StreamingHttpResponse):
    """A :class:`~django.http.StreamingHttpResponse` over a synchronous iterator that streams under ASGI as well.

    Under WSGI it is Django's class unchanged. Under ASGI each piece is made in the request's thread-sensitive
    worker (``sync_to_async(thread_sensitive=True)``: the thread whose database connection the view used, so a
    server-side cursor opened there stays usable) and sent before the next one is made.
    """

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the body piece by piece, each made in the request's worker thread."""
        if self.is_async:  # an asynchronous iterator needs no help
            async for part in super().__aiter__():
                yield part
            return
        iterator = iter(self.streaming_content)
        step = sync_to_async(_next_piece, thread_sensitive=True)
        while True:
            piece = await step(iterator)
            if piece is None:
                return
            yield piece
