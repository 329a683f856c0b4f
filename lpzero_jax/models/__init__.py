"""Flax model families (one file each) and shared layers."""
