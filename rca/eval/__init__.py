"""Scoring rankings against the truth, and the benchmark runner behind ``rca bench``."""
