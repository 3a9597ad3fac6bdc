"""Fit a checkpoint to a GPU's memory (pure math) and quantize it (llm-compressor, own environment)."""
