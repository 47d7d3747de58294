"""Ranking series as causes from a graph and anomaly evidence."""
