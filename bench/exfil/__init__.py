"""Exfiltration benchmark: seeded attacks and benign traffic through the real proxy."""
