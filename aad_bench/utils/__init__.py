"""Small shared utilities: atomic I/O, provenance, hashing."""
