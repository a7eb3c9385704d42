"""The Remove feature: the click's decisions (`actions`), the progressive cut-out, SAM 2's marks, and
the Remove tab, its subject picker and the MCP tool that share its form."""
