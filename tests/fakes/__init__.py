"""Fake provider servers (real HTTP on 127.0.0.1) for tests and local runs.

- tests.fakes.fal.FalFake: fal.ai queue for fal-ai/bria/background/remove and .../replace
- tests.fakes.runware.RunwareFake: Runware REST removeBackground
- tests.fakes.fixtures: pytest fixtures `fal_fake` and `runware_fake`

Run one alone: `python -m tests.fakes.fal --port N`, `python -m tests.fakes.runware --port N`.
"""
