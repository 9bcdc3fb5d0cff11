#!/usr/bin/env python3
"""A local HTTP MJPEG camera (multipart/x-mixed-replace) looping a folder of JPEGs.

    .venv/bin/python tests/support/mjpeg_server.py --port 8081 --fps 10 frames/

Prints ``READY http://127.0.0.1:PORT/stream.mjpeg`` once listening. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import time

BOUNDARY = b"frameboundary"


def make_handler(frames: list[bytes], fps: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header(
                "Content-Type", "multipart/x-mixed-replace; boundary=" + BOUNDARY.decode()
            )
            self.end_headers()
            started, index = time.monotonic(), 0
            try:
                while True:
                    jpeg = frames[index % len(frames)]
                    self.wfile.write(
                        b"--"
                        + BOUNDARY
                        + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(jpeg)).encode()
                        + b"\r\n\r\n"
                        + jpeg
                        + b"\r\n"
                    )
                    index += 1
                    delay = started + index / fps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve JPEG files as an MJPEG stream.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("frames", type=Path, help="folder of .jpg files, served in name order")
    args = parser.parse_args()
    frames = [path.read_bytes() for path in sorted(args.frames.glob("*.jpg"))]
    if not frames:
        parser.error(f"no .jpg files in {args.frames}")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(frames, args.fps))
    print(f"READY http://127.0.0.1:{args.port}/stream.mjpeg", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
