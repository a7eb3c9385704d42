"""What the Ray engines count before making workers (rmbg.ray_cluster), against a cluster's totals as
`ray.cluster_resources()` gives them: fractions of a GPU counted as Ray counts them, the messages, and the
--gpus-per-worker values refused. The same check on a real local Ray: tests/test_ray.py,
tests/test_ray_video.py and tests/test_ray_gpus.py."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from rmbg.cli.resume import UsageError
from rmbg.ray_cluster import ClusterTooSmall, gpus_arg, workers_that_fit


def cluster(**have: float) -> SimpleNamespace:
    """A connected Ray as workers_that_fit reads it: only its totals."""
    return SimpleNamespace(cluster_resources=lambda: dict(have))


@pytest.mark.parametrize(
    ("have", "workers", "gpus", "fit"),
    [
        ({"CPU": 16.0, "GPU": 1.0}, 8, 0.25, 4),
        ({"CPU": 16.0, "GPU": 0.7}, 12, 0.1, 7),  # 0.7 / 0.1 is 6.999... in floating point; Ray counts 7
        ({"CPU": 16.0, "GPU": 1.0}, 4, 0.3333, 3),
        ({"CPU": 16.0, "GPU": 2.0}, 4, 2, 1),
        ({"CPU": 3.0, "GPU": 8.0}, 8, 1, 3),  # the CPUs are what is short
        ({"CPU": 2.0}, 2, 0, 2),
        ({"CPU": 2.0, "GPU": 4.0}, 2, 0.5, 2),
    ],
)
def test_workers_that_fit(have, workers, gpus, fit):
    said: list[str] = []
    assert workers_that_fit(cluster(**have), workers, gpus, said.append) == fit
    assert len(said) == (fit < workers)


def test_fewer_workers_are_said_once_with_what_was_asked_and_what_there_is():
    said: list[str] = []
    assert workers_that_fit(cluster(CPU=16.0, GPU=1.0), 8, 0.25, said.append) == 4
    assert said == [
        "the Ray cluster has 1 GPU(s) and 16 CPU(s) in all: room for 4 of the 8 workers asked (0.25 GPU and "
        "1 CPU each); running 4."
    ]


def test_not_one_worker_is_refused_naming_what_is_short():
    with pytest.raises(ClusterTooSmall) as gpus:
        workers_that_fit(cluster(CPU=8.0, GPU=0.5), 2, 1, print)
    assert str(gpus.value) == (
        "Each Ray worker asks for 1 GPU and 1 CPU (--gpus-per-worker 1), and the Ray cluster has 0.5 GPU(s) and "
        "8 CPU(s) in all: not one worker can start (Ray would wait for one forever). Run with --gpus-per-worker 0 "
        "(on the CPUs), or on a cluster with GPUs (--address)."
    )
    with pytest.raises(ClusterTooSmall, match=r"has 4 GPU\(s\) and 0 CPU\(s\) in all: .* Run on a cluster with CPUs"):
        workers_that_fit(cluster(GPU=4.0), 2, 1, print)
    with pytest.raises(UsageError, match="needs 1 worker or more"):
        workers_that_fit(cluster(CPU=8.0), 0, 0, print)


@pytest.mark.parametrize(("text", "value"), [("0", 0.0), ("0.25", 0.25), ("1", 1.0), ("2", 2.0)])
def test_gpus_per_worker_values(text, value):
    assert gpus_arg(text) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("-1", "must be 0 or more GPUs: '-1'"),
        ("nan", "must be 0 or more GPUs: 'nan'"),
        ("inf", "must be 0 or more GPUs: 'inf'"),
        ("1.5", "more than 1 GPU must be a whole number of GPUs: '1.5'"),
        ("half", "not a number of GPUs: 'half'"),
    ],
)
def test_gpus_per_worker_refused(text, why):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        gpus_arg(text)
    assert str(refused.value) == why


@pytest.mark.parametrize(("given", "threads"), [(None, 1), ("3", 3)])
def test_a_worker_runs_on_the_cpus_ray_gave_it(monkeypatch, given, threads):
    """A worker holds CPUS_PER_WORKER of its node's CPUs: its provider's CPU threads are those, not one per
    core of the node (workers side by side would wait for each other's time slices); an RMBG_THREADS the
    run sets is kept. Built as both engines build it (worker_provider, in the actor's process: here, this
    one, with the environment put back after). On a machine of one core the first case would pass without
    the rule too; the suite's machines have two or more."""
    from rmbg.ray_cluster import CPUS_PER_WORKER, worker_provider
    from rmbg.threads import usable_cores

    monkeypatch.delenv("RMBG_THREADS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    if given is not None:
        monkeypatch.setenv("RMBG_THREADS", given)
    provider = worker_provider("u2netp", {}, [])
    assert CPUS_PER_WORKER == 1 and usable_cores() == threads and provider._threads == threads
