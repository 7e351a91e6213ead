"""The model in pure torch: config, encoders, layers, object tokens, the head and its fusion strategies, preprocessing."""
