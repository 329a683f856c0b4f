"""Proxy search: fitness, Algorithm 1 (evolution), random search, checkpoints."""
