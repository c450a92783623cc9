"""The `agentcage` command line: click commands that parse, call one layer, and print."""
