"""Camera sources (RTSP, HTTP MJPEG, files, demo) and the per-camera pipeline."""
