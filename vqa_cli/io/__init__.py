"""Input and output: images, CSV/JSONL rows and records, stdout rendering, progress on stderr."""
