"""Loaders and locators for the real data sets (see shared DATA.md)."""
