"""Anomaly scores per series, from a window split at the onset."""
