"""Everything done to a response before the agent sees it: real values become placeholders."""
