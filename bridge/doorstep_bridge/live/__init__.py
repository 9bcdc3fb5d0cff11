"""Live view: one masked MJPEG stream per camera, open only while someone watches."""
