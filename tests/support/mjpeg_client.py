"""Reading a ``multipart/x-mixed-replace`` MJPEG stream the way a browser does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import cv2
import numpy as np
import numpy.typing as npt


async def mjpeg_parts(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Each JPEG of an MJPEG response, as its part's ``Content-Length`` says."""
    content = response.content
    while True:
        length: int | None = None
        while True:  # the boundary line and the part's headers, up to the blank line
            line = await content.readline()
            if not line:
                return
            line = line.strip()
            if not line and length is not None:
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        yield await content.readexactly(length)


def decode_jpeg(data: bytes) -> npt.NDArray[np.uint8]:
    """A JPEG as a BGR array (fails the test when it is not a JPEG)."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "undecodable JPEG"
    return np.asarray(image, dtype=np.uint8)
