"""Pixels of an export: privacy masks filled in every frame, a real face blurred beyond
detection, the watermark drawn, the window respected."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
import importlib.util
from pathlib import Path
import threading

import av
import cv2
import numpy as np
import pytest

from doorstep_bridge.sharing import render as render_module
from doorstep_bridge.sharing.faces import SURE, CnnFaceFinder, CnnTracker
from doorstep_bridge.sharing.redact import Box, FaceFinder, FaceTracker
from doorstep_bridge.sharing.render import RenderCancelledError, RenderJob, Segment, render

from .conftest import T0, write_clip

MASKS = (((0, 0), (96, 0), (96, 64), (0, 64)), ((200, 150), (300, 150), (250, 230)))
# Limited-range YUV black, what a filled mask must decode to.
BLACK_Y = 16


def _face_image() -> np.ndarray:
    """A real photograph with a face: scikit-image's astronaut, or Debian's messi5."""
    # Found without importing scikit-image (which would pull in SciPy for one PNG).
    spec = importlib.util.find_spec("skimage")
    locations = spec.submodule_search_locations or [] if spec is not None else []
    candidates = [Path(location) / "data" / "astronaut.png" for location in locations]
    candidates.append(Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg"))
    for path in candidates:
        if path.is_file():
            image = cv2.imread(str(path))
            if image is not None:
                return image
    pytest.skip("no face photograph: pip install scikit-image (dev extra) or apt opencv-doc")


def _scene(width: int, height: int) -> np.ndarray:
    """A still, textured picture."""
    texture = np.random.default_rng(5).integers(40, 220, (height // 8, width // 8, 3))
    return cv2.GaussianBlur(cv2.resize(texture.astype(np.uint8), (width, height)), (0, 0), 3)  # type: ignore[no-any-return]


def _planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width, height = frame.width, frame.height
    array = frame.to_ndarray(format="yuv420p")
    chroma = array[height:].reshape(-1)
    quarter = (height // 2) * (width // 2)
    return (
        array[:height],
        chroma[:quarter].reshape(height // 2, width // 2),
        chroma[quarter : 2 * quarter].reshape(height // 2, width // 2),
    )


def _decode(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def _segment(path: Path, seconds: float = 2.0, masks: tuple = ()) -> Segment:
    return Segment("front_door", path, T0, T0, T0 + timedelta(seconds=seconds), masks)


@pytest.mark.parametrize("redact_faces", [True, False])
def test_privacy_masks_are_filled_in_every_frame(tmp_path: Path, redact_faces: bool) -> None:
    clip = write_clip(tmp_path / "clip.mp4", seconds=2.0)  # noise everywhere, masks not burnt
    output = tmp_path / "share.mp4"
    job = RenderJob("s_TESTTESTAA", (_segment(clip, masks=MASKS),), output, redact_faces)
    result = render(job, lambda _p: None, threading.Event())
    assert result.frames == 20
    mask = np.zeros((240, 320), np.uint8)
    for polygon in MASKS:
        cv2.fillPoly(mask, [np.array(polygon, np.int32)], 255)
    # Stay a few pixels inside the edges, where the encoder may blend.
    inside = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    outside = cv2.dilate(mask, np.ones((9, 9), np.uint8)) == 0
    inside_chroma_source = inside.copy()
    # The watermark (luma only) is written over everything at the top, masks included:
    # it covers footage, it never shows any.
    inside[:26] = False
    outside[:26] = False
    inside_chroma = cv2.resize(
        inside_chroma_source.astype(np.uint8), (160, 120), interpolation=cv2.INTER_NEAREST
    )
    inside_chroma = cv2.erode(inside_chroma, np.ones((3, 3), np.uint8)) > 0
    frames = _decode(output)
    assert len(frames) == 20
    for frame in frames:
        y, u, v = _planes(frame)
        for plane, mask_of, value in (
            (y, inside, BLACK_Y),
            (u, inside_chroma, 128),
            (v, inside_chroma, 128),
        ):
            error = np.abs(plane[mask_of].astype(int) - value)
            # Unmasked, these pixels are noise between 60 and 200.
            assert error.mean() < 1.5
            assert error.max() <= 16
        assert y[outside].std() > 10  # the rest of the picture is still there (black: 0)


def test_the_source_really_had_content_under_the_mask(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", seconds=0.5)
    y, _u, _v = _planes(_decode(clip)[0])
    assert y[8:56, 8:88].std() > 20


@pytest.mark.parametrize("detector", ["cnn", "haar"])
@pytest.mark.parametrize("speed", [4, 0], ids=["walking", "standing still"])
def test_a_real_face_is_blurred_beyond_detection(
    tmp_path: Path, speed: int, detector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if detector == "haar":  # the fallback when the CNN's weights are missing
        monkeypatch.setattr(render_module, "export_finder", FaceFinder)
    size = 160
    face = cv2.resize(_face_image(), (size, size), interpolation=cv2.INTER_AREA)
    finder = FaceFinder()
    # Where the face is in the photograph (the rest of it is not a face).
    in_photo = finder.find(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    assert in_photo, "the detector must find the face in the original photograph"
    truth = in_photo[0]
    top = 40

    def left(index: int) -> int:
        return 20 + index * speed  # the person walks across the picture, or stands

    # A still scene (as at a door), so that the tracker searches only where things change.
    scene = _scene(320, 240)

    def paint(image: np.ndarray, index: int) -> None:
        image[:] = scene
        image[top : top + size, left(index) : left(index) + size] = face

    clip = write_clip(tmp_path / "clip.mp4", seconds=2.0, fps=10, size=(320, 240), paint=paint)
    plain = tmp_path / "plain.mp4"
    redacted = tmp_path / "redacted.mp4"
    segment = _segment(clip, seconds=2.0)
    render(RenderJob("s_TESTTESTAA", (segment,), plain, False), lambda _p: None, threading.Event())
    result = render(
        RenderJob("s_TESTTESTAA", (segment,), redacted, True), lambda _p: None, threading.Event()
    )
    assert result.faces > 0

    # The check is more eager than the redaction's detector: finer steps, fewer neighbours.
    eager = cv2.CascadeClassifier(
        str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml")
    )

    def frames_showing_the_face(path: Path, frames: int = 20) -> int:
        count = 0
        for index, frame in enumerate(_decode(path)[:frames]):
            y, _u, _v = _planes(frame)
            luma = np.ascontiguousarray(y)
            boxes = finder.find(luma) + [
                Box(*map(int, found))
                for found in eager.detectMultiScale(luma, 1.05, 2, minSize=(24, 24))
            ]
            face_x, face_y = left(index) + truth.x, top + truth.y
            if any(
                abs(box.x + box.w / 2 - (face_x + truth.w / 2)) < truth.w / 2
                and abs(box.y + box.h / 2 - (face_y + truth.h / 2)) < truth.h / 2
                for box in boxes
            ):
                count += 1
        return count

    # Without redaction the face is plainly there; with it, in no frame at all.
    assert frames_showing_the_face(plain, frames=6) >= 5
    assert frames_showing_the_face(redacted) == 0


def test_tracker_searches_the_whole_frame_only_once_a_second() -> None:
    face = cv2.cvtColor(
        cv2.resize(_face_image(), (160, 160), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
    )
    # A person a few metres from the camera: the face is a small part of the frame.
    scene = cv2.cvtColor(_scene(640, 480), cv2.COLOR_BGR2GRAY)
    finder = FaceFinder()
    truth = finder.find(face)[0]
    tracker = FaceTracker(finder, full_every=5)
    for index in range(10):
        frame = scene.copy()
        x = 20 + index * 6
        frame[40:200, x : x + 160] = face
        boxes = tracker.find(frame)
        assert any(
            abs(b.x + b.w / 2 - (x + truth.x + truth.w / 2)) < truth.w / 2
            and abs(b.y + b.h / 2 - (40 + truth.y + truth.h / 2)) < truth.h / 2
            for b in boxes
        ), index
    assert tracker.full_searches == 2


def test_watermark_names_the_share_recipient_and_expiry_at_the_top(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", seconds=0.5, size=(640, 480))
    output = tmp_path / "share.mp4"
    render(
        RenderJob(
            "s_TESTTESTAA",
            (_segment(clip),),
            output,
            False,
            recipient="Officer Dupont",
            link_expires=T0 + timedelta(hours=24),
        ),
        lambda _p: None,
        threading.Event(),
    )
    y, _u, _v = _planes(_decode(output)[0])
    source_y, _su, _sv = _planes(_decode(clip)[0])

    def ink(plane: np.ndarray, rows: slice) -> int:
        # White text with a black outline: values the noisy source never has there.
        strip = plane[rows, 0:400]
        return int(((strip < 45) | (strip > 215)).sum())

    first, second, bottom = slice(0, 24), slice(24, 44), slice(420, 480)
    for rows in (first, second, bottom):
        assert ink(source_y, rows) == 0
    # Share, camera and time on the first line; recipient and expiry on the second;
    # nothing at the bottom, where a player's controls sit.
    assert ink(y, first) > 300
    assert ink(y, second) > 300
    assert ink(y, bottom) == 0


def test_watermark_without_recipient_is_one_line(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", seconds=0.3, size=(640, 480))
    output = tmp_path / "share.mp4"
    render(
        RenderJob("s_TESTTESTAA", (_segment(clip),), output, False),
        lambda _p: None,
        threading.Event(),
    )
    y, _u, _v = _planes(_decode(output)[0])
    strip = y[24:44, 0:400]
    assert int(((strip < 45) | (strip > 215)).sum()) == 0


def test_only_the_window_is_exported(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", seconds=3.0, fps=10)
    output = tmp_path / "share.mp4"
    segment = Segment("front_door", clip, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2))
    result = render(
        RenderJob("s_TESTTESTAA", (segment,), output, False), lambda _p: None, threading.Event()
    )
    assert 10 <= result.frames <= 11
    assert len(_decode(output)) == result.frames


def test_cancel_leaves_no_file(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", seconds=1.0)
    output = tmp_path / "share.mp4"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RenderCancelledError):
        render(RenderJob("s_TESTTESTAA", (_segment(clip),), output), lambda _p: None, cancel)
    assert list(tmp_path.glob("share.mp4*")) == []


def test_progress_rises_through_a_single_clip(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", seconds=2.0)
    reports: list[float] = []
    render(
        RenderJob("s_TESTTESTAA", (_segment(clip),), tmp_path / "share.mp4", False),
        reports.append,
        threading.Event(),
    )
    assert reports == sorted(reports)
    assert len([r for r in reports if 0 < r < 1]) >= 5
    assert reports[-1] == 1.0


# A person at a 1280x720 door camera at 15 fps: the CNN searches once a second, so
# 14 frames lie between two searches.
WIDE, HIGH, SPRITE, HEAD_TOP = 1280, 720, 200, 200


def _head() -> tuple[np.ndarray, Box]:
    """A face photograph cropped to the head (SPRITE px square), and the face in it."""
    photo = _face_image()
    sure = CnnFaceFinder(uncertain=SURE)
    face = sure.find(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))[0]
    half = max(face.w, face.h) // 2 + face.w // 2
    cy, cx = face.y + face.h // 2, face.x + face.w // 2
    crop = photo[max(0, cy - half) : cy + half, max(0, cx - half) : cx + half]
    head = cv2.resize(crop, (SPRITE, SPRITE), interpolation=cv2.INTER_AREA)
    return head, sure.find(cv2.cvtColor(head, cv2.COLOR_BGR2GRAY))[0]


def _paint_head(image: np.ndarray, scene: np.ndarray, head: np.ndarray, left: int | None) -> None:
    image[:] = scene
    if left is None:
        return
    x0, x1 = max(0, left), min(WIDE, left + SPRITE)
    if x1 > x0:
        image[HEAD_TOP : HEAD_TOP + SPRITE, x0:x1] = head[:, x0 - left : x1 - left]


def _readable_frames(path: Path, head: np.ndarray, face: Box, lefts: list[int | None]) -> list[int]:
    """Frames where the face can still be read: its pixels still correlate with the
    photograph's (fine detail, above 0.5), or the detector is sure of a face there."""
    sure = CnnFaceFinder(uncertain=SURE)
    original = cv2.cvtColor(head, cv2.COLOR_BGR2GRAY).astype(float)

    def detail(patch: np.ndarray) -> np.ndarray:
        return patch - cv2.GaussianBlur(patch, (0, 0), 3)  # type: ignore[no-any-return]

    readable = []
    for index, frame in enumerate(_decode(path)):
        left = lefts[index]
        if left is None:
            continue
        x0, x1 = max(0, left + face.x), min(WIDE, left + face.x + face.w)
        if x1 - x0 < 30:  # hardly any face in the picture
            continue
        luma = np.ascontiguousarray(_planes(frame)[0])
        top = HEAD_TOP + face.y
        shown = luma[top : top + face.h, x0:x1].astype(float)
        source = original[face.y : face.y + face.h, x0 - left : x1 - left]
        alike = np.corrcoef(detail(shown).ravel(), detail(source).ravel())[0, 1]
        found = any(
            abs(b.x + b.w / 2 - (left + SPRITE / 2)) < SPRITE / 2
            and abs(b.y + b.h / 2 - (HEAD_TOP + SPRITE / 2)) < SPRITE / 2
            for b in sure.find(luma)
        )
        if found or alike > 0.5:
            readable.append(index)
    return readable


@pytest.mark.parametrize(
    ("speed", "start", "arrives"),
    [(15, -40, 3), (40, 0, 0)],
    ids=["entering after a search", "crossing fast (600 px/s)"],
)
def test_a_face_between_two_searches_is_blurred_in_every_frame(
    tmp_path: Path, speed: int, start: int, arrives: int
) -> None:
    head, face = _head()
    scene = _scene(WIDE, HIGH)
    lefts: list[int | None] = [
        None if index < arrives else start + (index - arrives) * speed for index in range(30)
    ]

    def paint(image: np.ndarray, index: int) -> None:
        _paint_head(image, scene, head, lefts[index])

    clip = write_clip(tmp_path / "clip.mp4", seconds=2.0, fps=15, size=(WIDE, HIGH), paint=paint)
    redacted = tmp_path / "redacted.mp4"
    result = render(
        RenderJob("s_TESTTESTAA", (_segment(clip),), redacted, True),
        lambda _p: None,
        threading.Event(),
    )
    assert result.frames == 30
    assert result.faces > 0
    assert _readable_frames(redacted, head, face, lefts) == []


def test_searches_follow_the_timestamps_not_the_first_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A camera whose second frame comes 5 ms after the first (then every 66 ms): the
    # export still searches about once a second, and the walking face never shows.
    head, face = _head()
    scene = _scene(WIDE, HIGH)
    lefts: list[int | None] = [100 + index * 10 for index in range(60)]
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=15, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = WIDE, HIGH, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index in range(60):
            image = np.empty((HIGH, WIDE, 3), np.uint8)
            _paint_head(image, scene, head, lefts[index])
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = 0 if index == 0 else 5 + 66 * (index - 1)
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    searches: list[bool] = []
    find = CnnTracker.find

    def counted(self: CnnTracker, luma: np.ndarray, **options: bool) -> list[Box]:
        searches.append(options.get("remember", True))  # False: a frame between two
        return find(self, luma, **options)

    monkeypatch.setattr(CnnTracker, "find", counted)
    redacted = tmp_path / "redacted.mp4"
    result = render(
        RenderJob("s_TESTTESTAA", (_segment(clip, seconds=5.0),), redacted, True),
        lambda _p: None,
        threading.Event(),
    )
    assert result.frames == 60
    monkeypatch.undo()
    assert _readable_frames(redacted, head, face, lefts) == []
    # 3.8 s of video: at 0 s, just after 1, 2 and 3 s, and on the last frame.
    assert searches.count(True) == 5
