"""The model in pure torch: config, encoders, object tokens, fusion head, preprocessing."""
