"""A local Ray for the tests of `--engine ray`: 2 CPUs, no dashboard, the workers given the
settings the engine hands them (rmbg.cli.ray_engine.worker_env: RMBG_*, HF_* of this process)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_ray() -> Iterator[None]:
    import ray

    from rmbg.cli import ray_engine

    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": ray_engine.worker_env()}
    )
    try:
        yield
    finally:
        ray.shutdown()
