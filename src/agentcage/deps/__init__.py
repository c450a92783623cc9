"""`agentcage deps check`: what the project pins, what is newer, and rewriting the pins."""
