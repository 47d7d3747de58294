"""Causal graphs between series. Orientation everywhere: edge ``(cause, effect)``."""
