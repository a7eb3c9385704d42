"""rmbg.providers.hosted."""
