"""What a cage name may be: the schema's `name` and every state lookup share the pattern.

Kept apart from the schema so that reading a cage's state (`cage destroy NAME`) checks a
name without importing pydantic and the config models.
"""

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
