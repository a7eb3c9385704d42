"""rmbg.image."""
