"""A local Ray for the tests of `--engine ray`: 2 CPUs, no dashboard, started as the engine starts one
(rmbg.ray_cluster.start): its workers are this process's children and inherit its settings (RMBG_*,
HF_*, the keys), with no runtime_env unless a Ray is already up (rmbg.ray_cluster.runtime_env).
`gpus` declares GPUs Ray hands out without there being any: enough to see what the workers ask
(Ray counts them and sets CUDA_VISIBLE_DEVICES; a local model still runs on the CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_ray(gpus: int = 0) -> Iterator[None]:
    import ray

    from rmbg import ray_cluster

    ray.init(
        num_cpus=2,
        num_gpus=gpus,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env=ray_cluster.runtime_env(ray, None),
    )
    try:
        yield
    finally:
        ray.shutdown()
