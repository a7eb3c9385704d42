"""rmbg.eval."""
