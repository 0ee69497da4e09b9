"""Loaders and locators for the real data sets (see docs/data.md)."""
