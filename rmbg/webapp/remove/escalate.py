"""The Remove doors' "free model, a better one only when unsure" choice (issue #61): the page, its
named API, POST /api/remove and the MCP tool.

The chosen provider runs first, as always. Where its matte's confidence (rmbg.confidence, in
result.meta["confidence"]) is under the threshold, the same image goes to the better provider
through rmbg.remove_background's own escalation (rmbg.cascade: escalated, kept), and its result is
the one shown. The better provider is built before anything runs, with the visitor's key or, where
allowed, the server's, and wrapped in guard.Guarded on the visitor's payer, as a direct hosted
call is: reserved before it is sent, inside the session's and the day's caps, recorded in the
ledger by where the request got to. A cap reached, or a better provider that fails, keeps the first
result; result.meta["escalation"] says what happened in every case, and the cost line
(rmbg.webapp.costs), the REST header X-Rmbg-Escalation and the MCP file name read it.

Before a run the page says what it may cost (`expected_text`): nothing for an image the first
model is sure of, the better provider's price for one it is not, so "up to" that price. With
U2-Net-p first it also says the expected cost per photo: the share of DAVIS 2016 frames under the
threshold (rmbg.confidence.MEASURED_UNDER, docs/cascade.md) times the price. Another first model's
share is not measured: "up to" only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from ...cascade import ESCALATION, confidence_of
from ...confidence import DEFAULT_BELOW, MEASURED_MODEL, MEASURED_UNDER, measured_words
from ...errors import InvalidRequestError, MissingCredentialsError, RmbgError
from ...registry import info, list_providers
from ...result import Result
from ...types import format_usd
from ...wording import without_server_paths, without_setting_names
from ..catalog import Keys, build_provider, close, label_of
from ..context import App
from ..costs import per_image_costs
from ..guard import Guarded, payer
from ..inputs import fraction
from ..zerogpu import on_cpu_config

NONE = "none"  # the menu's "no escalation" (an empty value or None means the same)


def threshold(value: object) -> float:
    """The confidence threshold as sent (blank: DEFAULT_BELOW), a number from 0 to 1: the form's own
    check (rmbg.webapp.inputs.Fraction), for the doors that call without a form."""
    return fraction("escalate_below", value, DEFAULT_BELOW)


@dataclass(frozen=True)
class Escalation:
    """Escalate to `provider_id` where the first model's confidence is under `below`."""

    provider_id: str
    below: float = DEFAULT_BELOW

    @classmethod
    def of(cls, provider_id: object, below: object = None) -> Escalation | None:
        """The choice as a door sends it: None for none ("", "none", None); the threshold checked."""
        chosen = str(provider_id or "").strip()
        if chosen.lower() in ("", NONE):
            threshold(below)  # a bad threshold is refused even when nothing escalates
            return None
        return cls(chosen, threshold(below))

    def guarded(
        self, first_id: str, keys: Keys, app: App, session_id: str, on_start: Callable[[Any], None] | None, on_cpu: bool
    ) -> Guarded:
        """The better provider, built now (an unknown id, a missing key or a refused download is said
        before anything runs) and paid as a direct call of this visitor's is (guard.payer)."""
        if self.provider_id == first_id:
            raise InvalidRequestError(f"Escalate to another provider than the one that runs first ({first_id}).")
        config = on_cpu_config(app.config, self.provider_id) if on_cpu else app.config
        built = build_provider(self.provider_id, keys, config)
        if built.kind != "local" and built.status().state == "needs_key":  # no key here at all: refused now,
            close(built)  # in the door's words, not met as a failure after the first model ran
            declared = info(self.provider_id)
            raise MissingCredentialsError(self.provider_id, declared.key_env, declared.key_page)
        return Guarded(built, payer(app, session_id, keys, built), on_start, on_cpu=on_cpu)

    def keywords(self, better: Guarded) -> dict[str, Any]:
        """rmbg.remove_background's escalation keywords."""
        return {"escalate": better, "escalate_below": self.below}

    def said(self, result: Result, first_id: str, keys: Keys) -> Result:
        """`result` with meta["escalation"] in every case: escalated (from which provider, its
        confidence, the threshold), or not and why; no key in it (the library never puts one in a
        message; scrubbed all the same, as every message the app shows)."""
        from ...providers.hosted.payload import known_secrets, scrub

        note = result.meta.get(ESCALATION)
        if note is None:  # sure enough: remove_background did not escalate
            score = confidence_of(result)
            shown = "unknown" if score is None else f"{score:.3f}"
            note = f"not escalated: {first_id}'s confidence {shown} is not under {self.below:g}; nothing was sent"
        elif note.startswith("escalated from") and note.endswith(")"):  # rmbg.cascade.escalated's
            note = f"{note[:-1]}, under {self.below:g}) to {result.provider}"
        else:
            note = f"{note}; {first_id}'s result kept"
        clean = scrub(note, (*keys.secrets(), *known_secrets()), header_values=False).replace("***", "•••")
        clean = without_setting_names(without_server_paths(clean))  # a failure's words are a visitor's here
        return replace(result, meta={**result.meta, ESCALATION: clean})


def choices(app: App) -> list[tuple[str, str]]:
    """The page's "Escalate when unsure to" menu: none, then every provider this server offers
    (rmbg.registry.list_providers), the hosted ones (paid per image) first."""
    offered = list_providers()
    hosted = [pid for pid in offered if info(pid).kind == "hosted"]
    rows = [(f"{label_of(pid, app.config)} (paid per image)", pid) for pid in hosted]
    rows += [(f"{label_of(pid, app.config)} (free, on this server)", pid) for pid in offered if pid not in hosted]
    return [("none", NONE), *rows]


def expected_text(app: App, provider_id: object, below: object, first_id: object = None) -> str:
    """What an escalation may cost, said before the run: nothing where the first model is sure, the
    better provider's price per image here (rmbg.webapp.costs.per_image_costs: the price its vendor
    last reported here, else the price table) where it is not; "" for no escalation. With the
    measured first model (rmbg.confidence.MEASURED_MODEL) and a threshold measured or under one
    that is (measured_words), also the expected cost per photo: that share of the price; the "up
    to" stays, as the share is DAVIS's, not the visitor's photos'. `first_id` None (not said): the
    expected figure is said for the measured model, "up to" for another."""
    try:
        chosen = Escalation.of(provider_id, below)
    except InvalidRequestError as exc:
        return str(exc)
    if chosen is None:
        return ""
    pid = chosen.provider_id
    try:
        kind = info(pid).kind
    except RmbgError:  # an unknown id (said again when it runs)
        return f"Unknown provider {pid!r}."
    head = f"Where the first model's confidence is under {chosen.below:g}, {pid} runs too and its result is shown"
    if kind != "hosted":
        return f"{head}: free (a model on this server; it costs only machine time)."
    cost = per_image_costs(app.book).get(pid)
    price = f"${format_usd(cost[0].usd)}" if cost else "its price"
    paid = "paid with your key, or this server's where it allows, inside the spending caps"
    measured = measured_words(chosen.below, "photos")
    first = str(first_id or "").strip()
    if cost is None or measured is None or first not in ("", MEASURED_MODEL):
        if first not in ("", MEASURED_MODEL):
            why = f"how many of {first}'s photos fall under {chosen.below:g} is not measured, docs/cascade.md"
        elif measured is None:
            why = f"the share under a threshold is measured up to {max(MEASURED_UNDER):g}, docs/cascade.md"
        else:
            why = measured[1]
        return (
            f"{head}. Expected cost: $0 for a photo it is sure of; **up to {price} per photo if escalated** "
            f"({paid}; {why})."
        )
    share, words = measured
    expected = f"${format_usd(cost[0].usd * Decimal(str(share)))}"
    if first:
        return f"{head}. Expected cost: {words}: **expected {expected} per photo**, up to {price} ({paid})."
    return (
        f"{head}. Expected cost with {MEASURED_MODEL} first: {words}: **expected {expected} per photo**, up to "
        f"{price}; with another first model, **up to {price} per photo** (not measured; {paid})."
    )


def header_text(result: Result) -> str | None:
    """meta["escalation"] as an HTTP header can carry it (ASCII), None where no escalation was asked."""
    note = result.meta.get(ESCALATION)
    return None if note is None else note.replace("•••", "***").encode("ascii", "replace").decode("ascii")
