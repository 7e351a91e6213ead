"""`vqa serve`: models kept warm behind an OpenAI-compatible HTTP API, and the thin client the CLI uses."""
