"""NumPy golden model: every GPU kernel is tested against these functions."""
