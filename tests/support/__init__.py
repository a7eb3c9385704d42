"""Helpers shared by several test files (never a test file itself).

A test file imports what it shares from here, never from another test_*.py:
importing a test module runs its module-level imports (torch, gradio, ...) and
its fixtures' definitions in the importer. The older helpers beside this
package (tests/fakes/, tests/hfcache.py, tests/fakehub.py,
tests/tiny_transformers.py, tests/u2netp_fixture.py) are support too.

- app: launching the web app on 127.0.0.1 (serve, app_config, hub_cache, ...)
- archives: ZIP archives built in memory (zip_of)
- browser: headless Chromium through Playwright (CHROMIUM, ARGS, opened_app, shot, ...)
- benchmark: the DAVIS sample and the votes database of the Benchmark tab
- fetch: the local HTTP server behind the image-URL tests
- mcp: an MCP client session against the launched app
- models: synthetic photos, tiny graphs and weights, the weights server
- progressive: IS-Net general ready to download as the better model
- providers: an in-process Provider that counts its calls
- stand_in_u2netp: a stand-in for U2-Net-p's weights (write_stand_in_u2netp), about 1 % of its CPU
- source: the repository's own Python files, their text read once (for the checks that read the code)
- tiers: the test tiers (markers) and the skips for missing extras
"""
