"""Credential formats and the scanner that looks for them in requests and frames."""
