"""The default model, loaded before the first visitor asks for it.

A local model loads on its first run: U2-Net-p's ONNX Runtime session in
about half a second, BiRefNet's network in seconds. Left to the first
visitor, that time shows in their first cut-out (the launched app's /remove
with U2-Net-p on the first example photo, 2-core Zen 4: "model 0.30 s,
total 0.91 s", then 0.35 s total for the next photos).
`python app.py` starts warm_up() as it launches the page: one matte of a
small grey photo through the default provider, in a daemon thread, so the
page serves at once while the model loads (models load once, under a lock:
a visitor who comes during the warm-up waits for the same load, no longer).

Nothing is warmed for a hosted default (it would be a paid call) or for one
that is not ready here. A warm-up may fetch the default's weights, as the
first visitor's run would (the default is always a download the deployment
allows, rmbg.webapp.downloads). A failure is logged and the page runs as it
would have without the warm-up: the first visitor's run then meets it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from PIL import Image

from ..errors import RmbgError
from ..image import arrays
from ..providers.base import Provider
from .catalog import Keys, build_provider, close
from .context import App, built_from, warm_key

log = logging.getLogger("rmbg.webapp")
PHOTO = (64, 64)  # any size: the network's input is resized to its own


def warm(app: App, provider_id: str) -> bool:
    """Load `provider_id` with one matte when it is a local model ready here; True when it
    ran (the app then counts it among the warm providers), False when skipped or failed.
    OpenCV is imported first, whatever the provider (about 0.1 s of CPU that the first
    visitor's cut-out would otherwise wait for; rmbg.image.arrays)."""
    arrays.opencv()
    stamp = built_from()
    try:
        provider = build_provider(provider_id, Keys(), app.config)
    except RmbgError as exc:
        log.info("no warm-up of %s: %s", provider_id, exc)
        return False
    kept = False
    try:
        if provider.kind != "local":
            return False
        status = provider.status()
        if not status.ready:
            log.info("no warm-up of %s: %s", provider_id, status.message or status.state)
            return False
        provider.matte(Image.new("RGB", PHOTO, (128, 128, 128)))
        kept = app.built.keep(provider_id, False, provider, stamp)  # the first visitor's click builds nothing
    except Exception as exc:  # logged, never raised: the page runs without the warm-up
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("the warm-up of %s failed (%s); its first visitor loads it", provider_id, reason)
        return False
    finally:
        if not kept:
            close(provider)
    app.warm.add(warm_key(provider))
    log.info("default provider %s loaded", provider_id)
    return True


def preload(app: App, provider_id: str) -> bool:
    """On ZeroGPU, at import (build_demo), before the first visitor: the default local model loaded
    and placed on the device in the app's own process, as ZeroGPU asks (its GPU workers are forks
    of this process: they start with it; rmbg.webapp.guard). A PyTorch network is loaded, not run
    (no forward may run on ZeroGPU's GPU outside spaces.GPU); another backend (ONNX Runtime,
    OpenVINO: the CPU) through warm()'s one small matte. True when it is loaded."""
    from .zerogpu import mark_held

    try:
        provider = build_provider(provider_id, Keys(), app.config)
    except RmbgError as exc:
        log.info("no preload of %s: %s", provider_id, exc)
        return False
    network = getattr(provider, "network", None)
    if network is None:  # not a PyTorch network: its one small matte, on the CPU
        close(provider)
        loaded = warm(app, provider_id)
    else:
        loaded = _load(provider, provider_id, network)
        if loaded:
            app.warm.add(warm_key(provider))
    if loaded:
        mark_held(provider_id)
    return loaded


def preload_cpu(app: App) -> str | None:
    """On ZeroGPU, at import: the CPU alternative's model (zerogpu.cpu_provider: what a visitor whose
    GPU time is spent runs instead) fetched and loaded on the CPU by the operator's own process, so a
    visitor's CPU run downloads nothing (the app lets visitors start no download but the default's,
    rmbg.webapp.downloads) and waits for no load. Its id, or None when none could be had."""
    from ..registry import get_provider
    from .zerogpu import CPU_PROVIDERS

    for provider_id in CPU_PROVIDERS:
        try:
            provider = get_provider(provider_id, **{**app.config.config_for(provider_id), "device": "cpu"})
        except RmbgError as exc:
            log.info("no CPU alternative %s: %s", provider_id, exc)
            continue
        try:
            if not provider.status().ready:
                continue
            provider.matte(Image.new("RGB", PHOTO, (128, 128, 128)))
        except Exception as exc:  # logged: the next one, or the visitor is told why
            log.warning("the CPU alternative %s could not be loaded (%s: %s)", provider_id, type(exc).__name__, exc)
            continue
        finally:
            close(provider)
        app.warm.add(warm_key(provider))
        log.info("CPU alternative %s loaded", provider_id)
        return provider_id
    return None


def _load(provider: Provider, provider_id: str, network: Callable[[], object]) -> bool:
    try:
        if provider.kind != "local" or not provider.status().ready:
            return False
        started = time.perf_counter()
        network()
        log.info("default provider %s loaded at import in %.1f s", provider_id, time.perf_counter() - started)
        return True
    except Exception as exc:  # logged, never raised: the first visitor's GPU call loads it instead
        log.warning("the preload of %s failed (%s: %s)", provider_id, type(exc).__name__, exc)
        return False
    finally:
        close(provider)


def warm_up(app: App, provider_id: str) -> threading.Thread:
    """warm(app, provider_id) in a daemon thread (started; join it to wait); on ZeroGPU nothing
    more (preload() loaded the default at import, and no forward runs outside spaces.GPU there)."""
    from .guard import ZEROGPU

    if ZEROGPU:
        thread = threading.Thread(target=lambda: None, name="rmbg-warm-up", daemon=True)
        thread.start()
        return thread
    thread = threading.Thread(target=warm, args=(app, provider_id), name="rmbg-warm-up", daemon=True)
    thread.start()
    return thread
