"""Torch modules of the causal stage (no I/O, no pandas: tensors in, tensors out)."""
