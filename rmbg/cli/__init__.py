"""rmbg.cli."""
