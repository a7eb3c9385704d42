"""Starting the page's server so that a busy machine is not mistaken for an unreachable one.

gradio's own `launch()` checks, once its server runs, that its local address answers: a HEAD of the
page with a 3-second timeout, given up at the first timeout. On a loaded machine (a CI runner at load
15, a laptop compiling) the page's first answer takes longer than that, and gradio stops the app with
"When localhost is not accessible, a shareable link must be created. Please set share=True": the wrong
diagnosis and the wrong fix. `serve` starts the server without that check (gradio's `_frontend=False`),
then asks the page itself, patiently: the server is ready when its page answers, and when it does not
within `answers_within` seconds, the error says what happened (the address, the time waited, what the
request got, the machine's load) instead. Nothing here imports gradio: `demo` is the page's Blocks.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import httpx

ANSWERS_WITHIN_S = 300.0  # a page that answers at all answers within this, even on a machine at load 15
_READY = {200, 301, 302, 303, 307, 308, 401}  # the page, a redirect, or a login in front of it


class StartError(RuntimeError):
    """The server started but its own address did not answer: the message says what it got."""


def _load() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    except OSError:  # not every system has a load average
        return f"{os.cpu_count()} CPUs"


def wait_until_answers(url: str, answers_within: float = ANSWERS_WITHIN_S) -> None:
    """Returns once `url` answers with the page (or a redirect or login); else raises StartError.

    One request at a time, each allowed what is left of the time (a slow first page is not retried:
    it is waited for); refused connections are asked again, as the server may still be binding.
    Proxies from the environment are not used: this is the server asking itself."""
    deadline = time.monotonic() + answers_within
    last = "no answer"
    with httpx.Client(trust_env=False, verify=False) as client:  # noqa: S501  (its own address, maybe self-signed)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                status = client.head(url, timeout=left).status_code
            except httpx.TimeoutException:
                last = "no answer"
                continue
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))  # the port is not open yet: ask again
                continue
            if status in _READY:
                return
            last = f"HTTP {status}"
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    raise StartError(
        f"the web server started, but its own address {url} did not answer within {answers_within:g} s "
        f"(last: {last}; {_load()}). On a busy machine, start it again when the load is lower; "
        "otherwise something on this machine (a firewall, or a proxy in HTTP_PROXY) is in the way of "
        "that address."
    )


CLOSE_S = 60.0  # the longest a server that never answered may take to end after it is told to


IDLE_POLL_S = 0.01  # how often an idle queue looks for work (gradio's own progress loop's period)


def calm_queue(demo: Any) -> None:
    """The queue's idle look-for-work period set to IDLE_POLL_S: gradio's loop sleeps 1 ms between looks
    when nothing is queued (on every system but Windows): CPU spent by a server doing nothing, all day on
    a Space. 10 ms spends under half of it (tests/test_launch.py measures both in one process) and adds at
    most 10 ms before an event that came to an idle queue starts. A gradio without the attribute (another
    version) is left as it is."""
    queue = getattr(demo, "_queue", None)
    period = getattr(queue, "sleep_when_free", None)
    if queue is not None and isinstance(period, (int, float)):
        queue.sleep_when_free = max(period, IDLE_POLL_S)


def headless_plots() -> None:
    """Matplotlib's backend named for a server (Agg), unless the environment names one: gradio sets and
    restores it around every event it runs, and an unnamed one is found at the first by importing pyplot
    and trying the GUI toolkits (0.55 s of CPU on a visitor's first click, measured on 2 cores; with it
    named, 0.46 s is matplotlib's import alone). Before matplotlib is imported: it reads MPLBACKEND then."""
    os.environ.setdefault("MPLBACKEND", "agg")


def serve(demo: Any, *, block: bool = True, answers_within: float = ANSWERS_WITHIN_S, **options: Any) -> str:
    """demo.launch(**options), ready once its page answers (wait_until_answers); returns its local URL.

    With block (as `python app.py` runs it) this then serves until the process is stopped; without,
    it returns with the server running on its own thread (tests, notebooks): `demo.close()` stops it.
    A server whose page never answers is closed before StartError is raised. Unless quiet, prints
    "rmbg: ready on URL" once the page answers."""
    options.pop("prevent_thread_lock", None)
    headless_plots()
    calm_queue(demo)
    with warnings.catch_warnings():
        # gradio warns of a gr.State input in any named endpoint, as if each were an MCP tool: the MCP
        # gate (rmbg.webapp.mcp_gate.callable_tools) lists and calls none that keeps gradio session state
        warnings.filterwarnings("ignore", message="This MCP server includes a tool that has a gr.State input")
        demo.launch(**options, prevent_thread_lock=True, _frontend=False)
    url = str(demo.local_url)
    try:
        wait_until_answers(url, answers_within)
    except BaseException:
        server = getattr(demo, "server", None)
        demo.close()  # gradio waits 5 s for its server's thread; a loaded machine may need longer to answer
        thread = getattr(server, "thread", None)  # the requests in flight, then let the port go
        if thread is not None:
            thread.join(timeout=CLOSE_S)
        raise
    if not options.get("quiet"):
        print(f"rmbg: ready on {url}", flush=True)  # the readiness line a supervisor (or a test) waits for
    if block:
        demo.block_thread()
    return url
