"""rmbg.providers.local."""
