"""Fake provider servers (real HTTP on 127.0.0.1) for tests and local runs.

- tests.fakes.fal.FalFake: fal.ai queue for fal-ai/bria/background/remove and .../replace
- tests.fakes.runware.RunwareFake: Runware REST removeBackground
- tests.fakes.removebg.RemoveBgFake: remove.bg POST /v1.0/removebg
- tests.fakes.photoroom.PhotoroomFake: Photoroom POST /v1/segment
- tests.fakes.fal_video.FalVideoFake: fal.ai bria/video/background-removal/v3, its queue and storage
- tests.fakes.runware_video.RunwareVideoFake: Runware bria:51@1 (removeBackground on video), mediaStorage
  (both checked against the vendors' own clients: tests/test_hosted_video_sdk.py)
- tests.fakes.cloudflare_video.CloudflareVideoFake: Cloudflare Workers AI bria/v-rmbg-3.0 (POST .../ai/run),
  built from Cloudflare's model and errors pages (no official Python client drives it)
- tests.fakes.hosted.FAKES: which fake serves each hosted provider (the contract test reads it)
- tests.fakes.fixtures: pytest fixtures `fal_fake`, `runware_fake`, `removebg_fake`, `photoroom_fake`

Run one alone: `python -m tests.fakes.fal --port N`, `python -m tests.fakes.runware --port N`,
`python -m tests.fakes.removebg --port N`, `python -m tests.fakes.photoroom --port N`.
"""
