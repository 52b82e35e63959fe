"""Uploaded images: size and type limits and safe decoding (non-images and decompression bombs refused)."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image, UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # the only decoders tried on uploads
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and small fields around the file


class UploadRefusedError(ValueError):
    """An upload that is refused, with the HTTP status to answer (413 too large, 415 not an image, 400 broken)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an uploaded image to (H, W, 3) uint8 RGB; its declared size is checked before any pixel is decoded."""
    if not data:
        raise UploadRefusedError(400, "the uploaded file is empty")
    if len(data) > max_bytes:
        raise UploadRefusedError(413, f"the upload is {len(data)} bytes; the limit is {max_bytes}")
    try:  # no warnings filter here: catch_warnings is process-wide and not thread-safe under a threaded server
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:  # reads the header only
            width, height = image.size
            if width < 1 or height < 1 or width * height > max_pixels:
                raise UploadRefusedError(
                    413, f"the image declares {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
                )
            image.seek(0)  # the first frame of an animation
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except UploadRefusedError:
        raise
    except UnidentifiedImageError:
        raise UploadRefusedError(415, f"not an image of a supported type ({', '.join(FORMATS)})") from None
    except Image.DecompressionBombError:
        raise UploadRefusedError(
            413, "the image declares more pixels than PIL decodes safely (a decompression bomb)"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UploadRefusedError(400, f"the image could not be decoded: {error}") from None


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        """Pass the request on with a receive() that counts body bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await send_error(send, 400, f"bad Content-Length {length.decode(errors='replace')!r}")
                return
            if int(length) > self.limit:
                await send_error(send, 413, f"the request body is {int(length)} bytes; the limit is {self.limit}")
                return
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    from fastapi import HTTPException  # re-raised as it is by FastAPI's body parsing

                    raise HTTPException(413, f"the request body is over the limit of {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


async def send_error(send, status: int, message: str) -> None:
    """Answer an ASGI request with `status` and {"detail": message} as JSON, from middleware."""
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
