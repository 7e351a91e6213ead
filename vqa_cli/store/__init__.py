"""Where models live: the bundle format, the Hugging Face cache, and -m names -> engines."""
