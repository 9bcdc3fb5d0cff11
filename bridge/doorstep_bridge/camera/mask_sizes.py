"""Whether a camera's privacy masks still fit the frames it sends.

Privacy masks are polygons in the main stream's pixels. A camera set to another
resolution (in its own web page, or after a firmware update) keeps sending a picture
of the same porch, but the same pixel numbers now mean another part of it: masks
drawn on 1920x1080 frames cover the top-left quarter of the area on 3840x2160 ones,
and what they hid is recorded. Nothing in the picture says so. The bridge therefore
remembers the frame size each camera's masks were first used at (in the storage
folder, so a restart does not forget it) and says so, at every start, while the
camera sends another size with the same masks. Redrawing the masks (any change to
them) takes the new size as theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
import hashlib
import json
import logging
from pathlib import Path
import threading

from doorstep_bridge.files import atomic_write
from doorstep_bridge.validation import Polygon

_LOGGER = logging.getLogger(__name__)

#: In the storage folder: ``{camera: {"masks": <digest>, "size": [width, height]}}``.
FILE_NAME = "privacy_mask_sizes.json"


def masks_digest(polygons: Sequence[Polygon]) -> str:
    """A short digest of the polygons: changed masks are masks drawn anew."""
    text = json.dumps([[list(point) for point in polygon] for polygon in polygons])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def outside_the_frame(polygons: Sequence[Polygon], size: tuple[int, int]) -> list[int]:
    """The numbers (from 1) of the masks that lie wholly outside a ``size`` frame.

    A mask that only reaches past an edge is fine (drawn generously to cover a corner);
    one that lies wholly past it hides nothing: drawn for a larger picture.
    """
    width, height = size
    return [
        number
        for number, polygon in enumerate(polygons, start=1)
        if min(x for x, _ in polygon) >= width or min(y for _, y in polygon) >= height
    ]


class MaskSizes:
    """The frame size each camera's privacy masks were drawn for, kept on disk.

    Called from the cameras' reader threads; blocking file work is fine there.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        # (camera, size) already warned about in this run: said once per size.
        self._warned: set[tuple[str, tuple[int, int]]] = set()

    def _load(self) -> dict[str, object]:
        try:
            data = json.loads(self._path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            _LOGGER.warning("Cannot read %s (%s): starting it again", self._path, err)
            return {}
        return data if isinstance(data, dict) else {}

    def _drawn_for(self, camera: str, digest: str, size: tuple[int, int]) -> tuple[int, int]:
        """The size the masks with ``digest`` were drawn for; ``size`` for new masks."""
        saved = self._load()
        entry = saved.get(camera)
        if isinstance(entry, dict) and entry.get("masks") == digest:
            drawn = entry.get("size")
            if (
                isinstance(drawn, list)
                and len(drawn) == len(size)
                and all(type(v) is int and v > 0 for v in drawn)
            ):
                return (drawn[0], drawn[1])
        # New masks (or none known yet): drawn for the frames the camera sends now.
        saved[camera] = {"masks": digest, "size": list(size)}
        try:
            atomic_write(self._path, json.dumps(saved, indent=1).encode())
        except OSError as err:
            _LOGGER.warning("Cannot write %s: %s", self._path, err)
        return size

    def seen(self, camera: str, polygons: Sequence[Polygon], size: tuple[int, int]) -> str | None:
        """The camera's main stream delivers ``size`` frames: warn if its masks do not fit.

        Returns:
            The problem in a line (for Home Assistant's repair), or None when they fit.
        """
        if not polygons or not all(size):
            return None
        with self._lock:
            drawn = self._drawn_for(camera, masks_digest(polygons), size)
            first = (camera, size) not in self._warned
            self._warned.add((camera, size))
        width, height = size
        key = f"cameras.{camera}.privacy_masks"
        if drawn != size:
            if first:
                _LOGGER.warning(
                    "Camera %s now sends %dx%d frames, but its privacy masks were drawn while"
                    " it sent %dx%d: masks are in pixels, so they now cover another part of the"
                    " picture and what they hid may be recorded. Look at a snapshot, then redraw"
                    " %s in %dx%d pixels (the bridge then takes them as drawn for that size)"
                    " or set the camera back to %dx%d",
                    camera,
                    width,
                    height,
                    drawn[0],
                    drawn[1],
                    key,
                    width,
                    height,
                    drawn[0],
                    drawn[1],
                )
            return (
                f"the privacy masks were drawn while the camera sent {drawn[0]}x{drawn[1]}"
                f" frames; it now sends {width}x{height}"
            )
        if outside := outside_the_frame(polygons, size):
            numbers = ", ".join(str(number) for number in outside)
            if first:
                _LOGGER.warning(
                    "Camera %s sends %dx%d frames, but its privacy mask(s) %s lie wholly"
                    " outside them and hide nothing: masks are in the main stream's pixels."
                    " Redraw %s on a snapshot of this camera",
                    camera,
                    width,
                    height,
                    numbers,
                    key,
                )
            return f"privacy mask(s) {numbers} lie wholly outside the {width}x{height} frames"
        return None
