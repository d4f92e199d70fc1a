"""Normalization tests."""
