"""Converting decoded PyAV frames (pixel format, size) on the calling thread alone.

PyAV 17 and later scale with a pool of threads by default, one per CPU. The bridge
converts on threads of its own (a camera's pipeline, a recorder, a worker), one frame at
a time, so the pool only adds threads: PyAV 19 keeps one per converting thread, and
PyAV 17 and 18 keep a scaling context, with its pool, for every frame they converted as
long as that frame lives. Counted with PyAV 18.1 on two CPUs, 300 converted frames kept
two threads each alive (600 threads); one thread each converted them in half the CPU
time, to the same pixels. Every conversion goes through here with one thread, on the
PyAV versions that can be told.
"""

from __future__ import annotations

from typing import Any, Final

import av

# A `threads` argument to PyAV's reformat: PyAV 17 and later take one (and default to
# a pool); earlier versions scale on the calling thread and take none.
_ONE_THREAD: Final[dict[str, int]] = (
    {"threads": 1} if int(av.__version__.split(".", 1)[0]) >= 17 else {}
)


def reformat(frame: Any, **how: Any) -> Any:
    """``frame.reformat(**how)`` (a new frame of that size and format), on this thread."""
    return frame.reformat(**how, **_ONE_THREAD)


def to_ndarray(frame: Any, pixel_format: str) -> Any:
    """The frame as a NumPy array in ``pixel_format`` (``bgr24``, ``gray``), on this thread."""
    return frame.to_ndarray(format=pixel_format, **_ONE_THREAD)
