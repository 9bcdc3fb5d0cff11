"""Who is there: person detection on the regions the motion core reports (docs/detection.md)."""
