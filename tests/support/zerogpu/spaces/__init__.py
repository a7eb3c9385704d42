"""A stand-in for Hugging Face's `spaces` package on ZeroGPU hardware, as far as
rmbg meets it (put this folder on PYTHONPATH before the app starts).

As the real package (spaces.zero: decorator, wrappers, client), and only
where SPACES_ZERO_GPU is true (elsewhere `spaces.GPU` returns the function
unchanged): `spaces.GPU(duration=...)(fn)` returns a function that, for
each call,

- evaluates the duration: a number of seconds, a timedelta, or a callable
  called with the call's own arguments (60 s when none is given);
- schedules it for the visitor: refused with gradio's `gr.Error`, titled and
  worded as spaces.zero.client.schedule does, when the ask is over the
  longest one call may have (MAX_S: "ZeroGPU illegal duration"), when no GPU
  is free (FAKE_ZEROGPU_NO_GPU=1: "ZeroGPU client error"), or when it is
  more than the visitor has left of their daily quota ("ZeroGPU quota
  exceeded");
- runs `fn` in a worker process forked from the caller's (on a thread of its
  own there), its arguments and result pickled through multiprocessing
  queues, as spaces.zero.wrappers does: an argument that cannot be pickled
  fails the call in the caller with PicklingError, before anything runs. The
  worker is kept for the next call, as ZeroGPU keeps an idle one;
- charges the visitor: the seconds the call took, as ZeroGPU does on
  release, or the seconds it asked for with FAKE_ZEROGPU_CHARGE=asked (the
  worst case: each call used all it asked for).

The visitor: ZeroGPU tells visitors apart by the X-IP-Token header of the
gradio request (a token the Hub's page adds; no request, as for a plain
FastAPI route, means no token and the Space's IP-based quota). Here the
header's value is "TIER:NAME" (TIER: anonymous, free or pro; quotas QUOTA_S:
2, 5 and 40 minutes a day), and without a token every call is the visitor
FAKE_ZEROGPU_VISITOR ("anonymous:ip" by default). A quota refills a day after
its first use; FAKE_ZEROGPU_SPENT lets visitors arrive with part of it spent.

Each call appends a line to $FAKE_ZEROGPU_LOG: the duration it asked for
(evaluated), the visitor and what they had left before it, the worker's pid
and what the call was (the function's name and, for a list argument, its
length); a refused call, its refusal's title instead of a worker.
"""

from __future__ import annotations

import inspect
import json
import math
import multiprocessing
import os
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pickle import PicklingError

_fork = multiprocessing.get_context("fork")
DEFAULT_S = 60  # spaces.zero.client.DEFAULT_SCHEDULE_DURATION
MAX_S = 300  # the longest ask ZeroGPU has been seen to take (its message for more: "illegal duration")
DAY_S = 24 * 3600
QUOTA_S = {"anonymous": 120, "free": 300, "pro": 2400}
AUTH = {"anonymous": None, "free": "regular", "pro": "pro"}  # spaces.zero.api.AuthLevel
EXAMPLES_RETRY_MESSAGE = "Try re-running outside of examples if it happened after clicking one"
TOKENS_SETTINGS_URL = "https://huggingface.co/settings/tokens"
SUBSCRIBE_TO_PRO_URL = "https://huggingface.co/subscribe/pro?from=ZeroGPU"


def _zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def error(title: str, message: str):
    """gradio's gr.Error with ZeroGPU's title, as spaces.zero.gradio.error makes it."""
    import gradio as gr

    params = inspect.signature(gr.Error).parameters
    kwargs = {}
    if "title" in params:
        kwargs["title"] = title
    if "print_exception" in params:
        kwargs["print_exception"] = False
    return gr.Error(message, **kwargs)


def _request():
    """The gradio request of the call, None outside one; gradio is not imported for it (where gradio is not
    loaded there is no request: seconds of CPU in a process that calls a GPU function without the app)."""
    context = sys.modules.get("gradio.context")
    if context is None:
        return None
    return context.LocalContext.request.get(None)


def _visitor() -> tuple[str, str, str | None, bool]:
    """(tier, visitor key, the token or None, whether the call came from a program rather than the page)."""
    request = _request()
    headers = getattr(request, "headers", None) or {}
    token = headers.get("x-ip-token")
    api_call = headers.get("x-gradio-user") != "app"
    said = token or os.environ.get("FAKE_ZEROGPU_VISITOR", "anonymous:ip")
    tier, _, name = said.partition(":")
    if tier not in QUOTA_S:
        tier = "anonymous"
    return tier, f"{tier}:{name}", token, api_call


class _Quotas:
    """Each visitor's use: (when the day began, seconds used since); FAKE_ZEROGPU_SPENT
    ("anonymous:page=118,free:alice=290") has visitors arrive with part of their day spent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.used: dict[str, tuple[float, float]] = {}
        for entry in filter(None, os.environ.get("FAKE_ZEROGPU_SPENT", "").split(",")):
            visitor, _, spent = entry.partition("=")
            self.used[visitor.strip()] = (time.time(), float(spent))

    def left(self, visitor: str, tier: str, now: float) -> tuple[int, timedelta]:
        began, used = self.used.get(visitor, (now, 0.0))
        if now - began >= DAY_S:
            began, used = now, 0.0
        wait = timedelta(seconds=round(DAY_S - (now - began)))
        return max(0, QUOTA_S[tier] - math.ceil(used)), wait

    def charge(self, visitor: str, seconds: float, now: float) -> None:
        with self.lock:
            began, used = self.used.get(visitor, (now, 0.0))
            if now - began >= DAY_S:
                began, used = now, 0.0
            self.used[visitor] = (began, used + seconds)


QUOTAS = _Quotas()


def _seconds(duration, args, kwargs) -> int:
    """The ask, as spaces.zero.wrappers.static_duration and client.get_duration_seconds make it."""
    if callable(duration):
        duration = duration(*args, **kwargs)
    if duration is None:
        return DEFAULT_S
    if not isinstance(duration, timedelta):
        duration = timedelta(seconds=duration)
    return duration.seconds


def schedule(asked: int, entry: dict) -> tuple[str, str]:
    """The visitor's (tier, key) when the call may run; else the refusal ZeroGPU raises."""
    tier, visitor, token, api_call = _visitor()
    left, wait = QUOTAS.left(visitor, tier, time.time())
    entry.update(visitor=visitor, left=left)
    auth = AUTH[tier]
    if asked > MAX_S:
        message = f"The requested GPU duration ({asked}s) is larger than the maximum allowed"
        raise _refused(entry, "ZeroGPU illegal duration", message)
    if os.environ.get("FAKE_ZEROGPU_NO_GPU") == "1":
        raise _refused(entry, "ZeroGPU client error", "No GPU was available")
    if asked > left:
        if token is None:
            message = f"Space app has reached its GPU limit. {EXAMPLES_RETRY_MESSAGE}"
            raise _refused(entry, "ZeroGPU quota exceeded", message)
        gpu = "Pro ZeroGPU" if auth == "pro" else ("free ZeroGPU" if auth == "regular" else "ZeroGPU")
        message = f"You have exceeded your {gpu} quota ({asked}s requested vs. {left}s left). Try again in {wait}. "
        if api_call and auth is None:
            message += f"Authenticate with a Hugging Face token for more quota - {TOKENS_SETTINGS_URL}"
        elif api_call and auth == "regular":
            message += f"Subscribe to Hugging Face PRO to get 40 min of ZeroGPU quota a day - {SUBSCRIBE_TO_PRO_URL}"
        raise _refused(entry, "ZeroGPU quota exceeded", message)
    return tier, visitor


def _refused(entry: dict, title: str, message: str):
    _log({**entry, "refused": title})
    return error(title, message)


def _serve(task, requests, answers):  # in the forked worker: each call on a thread of its own, as ZeroGPU's
    while True:
        args, kwargs = requests.get()
        with ThreadPoolExecutor(1) as executor:
            answers.put(executor.submit(_run, task, args, kwargs).result())


def _run(task, args, kwargs):
    try:
        return ("ok", task(*args, **kwargs))
    except Exception as exc:  # sent back to the caller, as ZeroGPU's worker does
        return ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")


class _Worker:
    def __init__(self, task):
        self.requests, self.answers = _fork.SimpleQueue(), _fork.SimpleQueue()
        self.process = _fork.Process(target=_serve, args=(task, self.requests, self.answers), daemon=True)
        self.process.start()


def _log(entry: dict) -> None:
    path = os.environ.get("FAKE_ZEROGPU_LOG")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(entry) + "\n")


def GPU(fn=None, *, duration=None):  # noqa: N802  (the real package's name)
    def decorate(task):
        if not _zero_gpu():
            return task
        lock, kept = threading.Lock(), []  # the worker of this function, kept while it lives

        def on_gpu(*args, **kwargs):
            asked = _seconds(duration, args, kwargs)
            sizes = [len(a) for a in args if isinstance(a, list)]
            entry = {"duration": asked, "fn": task.__name__, "items": sizes}
            _tier, visitor = schedule(asked, entry)
            with lock:  # one allocation at a time here
                started = time.monotonic()
                if not kept or not kept[0].process.is_alive():
                    kept[:] = [_Worker(task)]
                worker = kept[0]
                try:
                    worker.requests.put((args, kwargs))
                except Exception as exc:
                    if isinstance(exc, PicklingError) or "pickle" in str(exc):
                        raise PicklingError(str(exc)) from exc
                    raise
                status, value = worker.answers.get()
                took = time.monotonic() - started
            charged = asked if os.environ.get("FAKE_ZEROGPU_CHARGE") == "asked" else took
            QUOTAS.charge(visitor, charged, time.time())
            _log({**entry, "worker": worker.process.pid, "seconds": round(took, 3), "charged": round(charged, 3)})
            if status == "error":  # as ZeroGPU: the traceback printed, the exception's class name raised
                print(value)
                raise error("ZeroGPU worker error", value.split(":")[0])
            return value

        on_gpu.__wrapped__ = task
        return on_gpu

    return decorate(fn) if fn is not None else decorate


def gradio_auto_wrap(task):
    """What gradio calls on each event's function on a Space (SYSTEM=spaces): the function itself,
    as the real package does unless SPACES_GRADIO_AUTO_WRAP is set (rmbg decorates its own)."""
    if os.environ.get("SPACES_GRADIO_AUTO_WRAP", "").lower() in ("1", "t", "true") and callable(task):
        return GPU(task)
    return task
