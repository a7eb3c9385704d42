"""Ray plumbing shared by `rmbg remove --engine ray` (rmbg.cli.ray_engine) and `rmbg video --engine
ray` (rmbg.video.ray_video), below both: starting or joining Ray, the settings its workers get, what a
worker actor asks the cluster for, and the provider it builds.

Each worker holds CPUS_PER_WORKER CPU (Ray Data's default for a map_batches actor, asked
explicitly by the video engine) and `gpus_per_worker` GPUs. Ray keeps an actor that asks for
more than the cluster has pending, without a word, forever: so before any actor is made, what
the run asks is compared with `ray.cluster_resources()` (the cluster's totals). A cluster
without room for one worker is refused (ClusterTooSmall, exit code 2, nothing written, nothing
sent); one with room for fewer than asked runs with those, said once: the work is the same, it
only takes longer, where a refusal would stop a run that can finish. Resources other jobs
hold are not counted: such an actor waits for them, not forever. A cluster that adds nodes
on demand (an autoscaler) counts only the nodes it has when the run starts.

Video workers are kept between runs of one process (IdleActors): the clips of one `rmbg video --engine
ray` command, or one program's calls, load the model once per worker, not once per clip. Idle, they
hold their CPU and GPU share, so the image engine lets them go (IDLE.release) before it makes its own.

Workers get the driver's RMBG_* and HF_* settings through Ray's runtime_env, never a secret
(worker_env; rmbg.cli.ray_engine says why), when they join a Ray that is already up; a local Ray
started here inherits this process's environment, and its workers start faster without one (runtime_env).
Only `import_ray` imports ray, and only when an engine runs; the command line's check (start Ray, then
workers_that_fit) is rmbg.cli.ray_engine.fitted_workers.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import UsageError
from .providers.base import Provider
from .settings import current
from .wording import number_text

ENV_PREFIXES = ("RMBG_", "HF_", "HUGGINGFACE_")
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
INSTALL = 'The Ray engine needs Ray Data: pip install "ray[data]" (or use the default local engine).'
CPUS_PER_WORKER = 1  # what a worker actor holds (Ray Data's default for map_batches; the video engine asks the same)
_LOG = logging.getLogger(__name__)


class RayUnavailable(UsageError):
    """--engine ray without Ray installed (a usage error: exit code 2)."""


class ClusterTooSmall(UsageError):
    """Not one worker fits the Ray cluster (exit code 2): Ray would keep it pending, and the run would hang."""


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable(INSTALL) from None
    return ray


def worker_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings a worker needs to build the same provider as the driver;
    nothing that looks like a secret (see the module's docstring)."""
    env = os.environ if environ is None else environ
    return {
        k: v
        for k, v in env.items()
        if k.startswith(ENV_PREFIXES) and not any(word in k.upper() for word in SECRET_WORDS)
    }


def runtime_env(ray: Any, address: str | None) -> dict[str, object] | None:
    """What ray.init is given for the workers' settings: worker_env through Ray's runtime_env when the run
    joins a Ray that is already up (`address`, RAY_ADDRESS, or the one `ray start` left on this machine),
    whose processes are not ours; None when Ray will start a local Ray here, whose workers are this
    process's children and have its environment already. A worker of a runtime_env starts through Ray's
    setup step (Ray imported twice, after a call to Ray's runtime-env agent) and is never one of the
    workers Ray starts ahead of time, so a local Ray's actors start sooner, for less CPU, without one."""
    try:
        local = address is None and ray._private.services.canonicalize_bootstrap_address(None) is None
    except Exception:  # Ray's lookup of a running Ray changed or failed: send the settings, as to a cluster
        local = False
    return None if local else {"env_vars": worker_env()}


def start(address: str | None) -> Any:
    """Ray, connected: to `address` (a cluster), or a local Ray started here; as it is when already up."""
    ray = import_ray()
    if not ray.is_initialized():
        keep = threading.current_thread() is threading.main_thread()
        ours = signal.getsignal(signal.SIGTERM) if keep else None
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            runtime_env=runtime_env(ray, address),
        )
        if keep:  # ray.init replaces SIGTERM's handler with sys.exit; the run's own must stay
            signal.signal(signal.SIGTERM, ours)
    return ray


class IdleActors:
    """Worker actors a finished run gave back, for the next run of the same kind (the provider, its
    settings, the GPUs each holds) on the same Ray connection to take instead of making new ones,
    each with its model loaded. One kind is kept: another kind's run lets the idle ones go first.
    A run that ends early (a stop, an error, a consumer that leaves) kills its actors instead of
    giving them back: one may still be running a chunk. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kind: tuple[object, ...] = ()
        self._idle: list[Any] = []

    def take(self, ray: Any, kind: tuple[object, ...], count: int) -> list[Any]:
        """Up to `count` idle actors of `kind` (possibly none); those of another kind are killed."""
        kind = (_connection(ray), *kind)
        with self._lock:
            if kind != self._kind:
                self._drop(ray)
                self._kind = kind
            taken, self._idle = self._idle[:count], self._idle[count:]
        return taken

    def give_back(self, ray: Any, kind: tuple[object, ...], actors: Sequence[Any]) -> None:
        with self._lock:
            if (_connection(ray), *kind) == self._kind:
                self._idle += actors
                return
        for actor in actors:
            ray.kill(actor)

    def held(self) -> list[str]:
        """The idle actors' ids (hex), oldest first."""
        with self._lock:
            return [actor._actor_id.hex() for actor in self._idle]

    def release(self, ray: Any) -> int:
        """Kill every idle actor (their CPUs and GPUs are free again); how many there were."""
        with self._lock:
            return self._drop(ray)

    def _drop(self, ray: Any) -> int:
        idle, self._idle = self._idle, []
        if self._kind[:1] == (_connection(ray),):  # an earlier connection's actors went with it
            for actor in idle:
                ray.kill(actor)
        self._kind = ()
        return len(idle)


def _connection(ray: Any) -> str:
    """This driver's Ray job: a new one after ray.shutdown() and ray.init(), whose actors are new too."""
    return str(ray.get_runtime_context().get_job_id())


IDLE = IdleActors()  # this process's idle video workers (rmbg.video.ray_video)


def gpus_problem(value: float) -> str | None:
    """What is wrong with `value` GPUs per worker, or None: 0 or more; past 1, whole GPUs (Ray
    shares a GPU only as a fraction of one). The command line's and RayVideo's one check."""
    if not math.isfinite(value) or value < 0:
        return "must be 0 or more GPUs"
    if value > 1 and not value.is_integer():
        return "more than 1 GPU must be a whole number of GPUs"
    return None


def number_arg(kind: str, parse: Callable[[str], Any], problem: Callable[[Any], str | None]) -> Callable[[str], Any]:
    """An argparse type: `parse` of the text (ValueError: "not {kind}") then `problem`'s word on the value
    (None: fine), refused at parse time with the flag's name: before anything starts, is written or is sent."""

    def arg(text: str) -> Any:
        typed = number_text("", text, argparse.ArgumentTypeError)  # int() reads "２" too; argparse names the flag
        try:
            value = parse(typed.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        said = problem(value)
        if said:
            raise argparse.ArgumentTypeError(f"{said}: {text!r}")
        return value

    return arg


gpus_arg = number_arg("a number of GPUs", float, gpus_problem)  # --gpus-per-worker F
seconds_arg = number_arg(  # a length of time in seconds (--chunk-seconds): finite, above 0
    "a number of seconds",
    float,
    lambda v: None if math.isfinite(v) and v > 0 else "must be a number of seconds above 0",
)


def count_arg(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of `least` or more (workers, a batch, frames, resamples)."""
    return number_arg("a whole number", int, lambda v: None if v >= least else f"must be {least} or more")


RAY_ONLY = "ray_only"  # the parser default naming a command's flags that mean something only with --engine ray


def ray_flag(parser: argparse.ArgumentParser, *names: str, default: object = None, **kwargs: Any) -> None:
    """A flag that means something only with --engine ray: None when not given, so that settle_ray_flags
    can refuse it on a local run (silently ignored, `--workers 8` would run on one process) and put
    `default` in on a Ray one."""
    action = parser.add_argument(*names, default=None, **kwargs)
    parser.set_defaults(**{RAY_ONLY: (*(parser.get_default(RAY_ONLY) or ()), (action.dest, names[0], default))})


def settle_ray_flags(args: argparse.Namespace) -> None:
    """The Ray-only flags (ray_flag) of a parsed command line: refused (UsageError) when given without
    --engine ray, else their defaults put in where not given."""
    flags = getattr(args, RAY_ONLY, None) or ()
    given = [flag for dest, flag, _ in flags if getattr(args, dest) is not None]
    if given and getattr(args, "engine", "local") != "ray":
        said = " and ".join([", ".join(given[:-1]), given[-1]] if len(given) > 1 else given)
        them = "them" if len(given) > 1 else given[0]
        raise UsageError(
            f"{said} {'are' if len(given) > 1 else 'is'} for --engine ray (this run is local): "
            f"add --engine ray, or leave {them} out."
        )
    for dest, _, default in flags:
        if getattr(args, dest) is None:
            setattr(args, dest, default)


def add_ray_flags(parser: argparse.ArgumentParser, ray_help: str, address: tuple[str, ...] = ("--address",)) -> None:
    """The flags of a command that may run on Ray (`rmbg remove`, `rmbg video`): --engine (ray_help: what
    `ray` does there), the cluster's address (its flag names: `address`), the worker actors and the GPUs
    each takes (gpus_arg); all but --engine Ray-only (ray_flag)."""
    parser.add_argument(
        "--engine", choices=["local", "ray"], default="local", help=f"local (this process, default) or ray ({ray_help})"
    )
    ray_flag(
        parser,
        *address,
        dest="address",
        metavar="ADDR",
        help="with --engine ray: the cluster ('auto', ray://host:10001); default: a local Ray on this machine",
    )
    ray_flag(
        parser,
        "--workers",
        type=count_arg(1),
        default=2,
        metavar="N",
        help="with --engine ray: worker actors (default 2)",
    )
    ray_flag(
        parser,
        "--gpus-per-worker",
        type=gpus_arg,
        default=0.0,
        metavar="F",
        help="with --engine ray: GPUs per worker (0.25 puts four workers on one GPU; default 0)",
    )


def gpu_ask(gpus_per_worker: float) -> dict[str, float]:
    """What a worker actor asks Ray for besides its CPU (both engines): Ray then shows the actor only the
    GPUs it was given (CUDA_VISIBLE_DEVICES), so worker_provider's device="auto" lands on them."""
    return {"num_gpus": gpus_per_worker} if gpus_per_worker else {}


def worker_provider(provider_id: str, config: Mapping[str, object], gpu_ids: Sequence[object]) -> Provider:
    """The provider a worker actor builds once (both engines): by its registered id, with the driver's
    config; a local model's device="auto" is the GPU Ray gave the actor (as cuda:0), else the CPU.
    `gpu_ids`: ray.get_gpu_ids() in the actor. Ray shows an actor that was given GPUs only those
    (CUDA_VISIBLE_DEVICES), but one given none sees every GPU of its node: without a word, each such
    worker would put its model on the node's first GPU, which Ray does not count (out of memory, or
    slower than asked, with many workers on one GPU). So a worker given no GPU is shown none.
    Its CPU work (a model's forward on the CPU, encodes) runs on the CPUS_PER_WORKER Ray gave it, not on
    every core of the node (rmbg.threads' budget, as RMBG_THREADS): workers side by side would each run
    a thread per core and wait for each other's time slices. An RMBG_THREADS of the run's is kept."""
    from .registry import get_provider

    if not gpu_ids:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # read when CUDA starts: before the model is built
    if not current().raw("RMBG_THREADS"):  # read when the provider is built and at each forward
        os.environ["RMBG_THREADS"] = str(CPUS_PER_WORKER)
    return get_provider(provider_id, **dict(config))


def workers_that_fit(ray: Any, workers: int, gpus_per_worker: float, say: Callable[[str], None] | None = None) -> int:
    """How many of `workers` actors (CPUS_PER_WORKER CPUs and `gpus_per_worker` GPUs each) the cluster has
    room for, by ray.cluster_resources(), before any actor is made: Ray would keep an actor that asks for
    more than the cluster has pending forever, and the run would hang without a word. None: ClusterTooSmall;
    fewer than asked: said once (`say`, else a warning in the log) and the run goes on with those."""
    if workers < 1 or gpus_per_worker < 0:
        raise UsageError(
            f"A Ray run needs 1 worker or more and 0 GPUs or more each, not {workers} and {gpus_per_worker:g}."
        )
    have = ray.cluster_resources()
    cpus, gpus = float(have.get("CPU", 0)), float(have.get("GPU", 0))
    by_cpu, by_gpu = _room(cpus, CPUS_PER_WORKER, workers), _room(gpus, gpus_per_worker, workers)
    each = f"{gpus_per_worker:g} GPU and {CPUS_PER_WORKER} CPU" if gpus_per_worker else f"{CPUS_PER_WORKER} CPU"
    cluster = f"the Ray cluster has {gpus:g} GPU(s) and {cpus:g} CPU(s) in all"
    if min(by_cpu, by_gpu) < 1:
        instead = (
            "with --gpus-per-worker 0 (on the CPUs), or on a cluster with GPUs"
            if by_gpu < 1
            else "on a cluster with CPUs"
        )
        raise ClusterTooSmall(
            f"Each Ray worker asks for {each} (--gpus-per-worker {gpus_per_worker:g}), and {cluster}: not one "
            f"worker can start (Ray would wait for one forever). Run {instead} (--address)."
        )
    fit = min(by_cpu, by_gpu, workers)
    if fit < workers:
        (say or _LOG.warning)(f"{cluster}: room for {fit} of the {workers} workers asked ({each} each); running {fit}.")
    return fit


def _room(have: float, each: float, most: int) -> int:
    """Actors of `each` that `have` holds (at most `most`); Ray counts resources to 1/10,000."""
    return most if each <= 0 else min(most, math.floor(have / each + 1e-6))
