"""Engines that answer: the Engine protocol, our bundles, and pretrained BLIP/ViLT."""
