"""The one wrapper every door pays through (issue #59): `Payer`, who pays (the rule on its ledger,
rmbg.money.paying.Policy, and the accounts a call counts against), in two forms that settle a call by one
implementation of where its request got to (Policy.settle_by_fate); `Paid`, a provider whose hosted calls pay
through a Payer.

The doors: the web app's page, REST, MCP, Compare, Benchmark and progressive results (rmbg.webapp.guard.Guarded
on the visitor's Payer, rmbg.webapp.spending), AI backgrounds, a hosted clip (rmbg.video.hosted), a CLI batch and
the Ray engine's budget actor (the split form: rmbg.cli.batch, rmbg.cli.budget), `evaluate` and a cascade's
escalations (Paid on Payer.operator), and the library's own hosted calls (rmbg.remove_background, rmbg.compare,
rmbg.replace_background: Paid on, or `pay` through, `library()`). docs/money.md says it from the outside.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from ..cache import payer_scope
from ..errors import InvalidRequestError
from ..types import format_usd
from ..wording import number_text
from .ledger import Account, Hold, Refused, Wait, open_ledger
from .paying import Payment, Policy, day_key, refusal_words

T = TypeVar("T")


class Payer:
    """Who pays for a door's paid calls: the rule on its ledger (`policy`) and the accounts each call counts
    against. The one wrapper every door pays through, in two forms that share Policy.settle_by_fate:

    - one call: `pay(payment, call, cost_of)` reserves, sends under the meter, settles by where the request
      got to (Policy.pay): the web app's doors, a hosted clip, `evaluate`, a cascade's escalations;
    - split, for a scheduler that must know a call has room before it hands it to a worker (a CLI batch,
      the Ray engine's budget actor): `try_reserve(payment)` now; the call runs under its own meter
      elsewhere (rmbg.cli.batch.attempt); `settle_by_fate(hold, estimate, billable=..., cost=...)` once it ended.

    `accounts`: a tuple, or a function that names them when each call's Payment is made (`payment()`), so
    a run that crosses midnight (UTC) counts each call against the day its hold was taken (operator()).
    `words`: how a refusal reads to this door's person (None: rmbg.money.paying.refusal_words, the web app's)."""

    def __init__(
        self,
        policy: Policy,
        accounts: tuple[Account, ...] | Callable[[], tuple[Account, ...]],
        words: Callable[[Refused, Payment], str] | None = None,
    ):
        self.policy = policy
        self._accounts = accounts
        self.words = words

    def __repr__(self) -> str:
        return f"Payer({self.accounts()!r})"

    @classmethod
    def operator(cls, name: str, cap: Decimal | None = None, policy: Policy | None = None) -> Payer:
        """A run on the operator's own keys (a CLI batch, a clip from the library, `evaluate`): its own
        account `name:<id>`, capped by `cap`, and the day's total the web app shares, capped only where the
        operator set RMBG_DAILY_CAP_USD, the day being the one each call's hold is taken on. A refusal by
        that day's cap names the setting (operator_words), not the visitors' words."""
        policy = policy or Policy()
        own = Account(f"{name}:{uuid.uuid4().hex}", usd_cap(cap))
        return cls(policy, lambda: (own, operator_day(policy.clock())), operator_words)

    def accounts(self) -> tuple[Account, ...]:
        """The accounts a call made now counts against."""
        return self._accounts() if callable(self._accounts) else self._accounts

    def payment(self, provider: str, estimate: Decimal, *, unit: str = "per image", vendor: str = "") -> Payment:
        """The Payment of one call of `provider`, priced `estimate`, on the accounts named now."""
        return Payment(provider, estimate, self.accounts(), unit, vendor=vendor, words=self.words)

    def pay(self, payment: Payment, call: Callable[[], T], cost_of: Callable[[T], Decimal], **options: Any) -> T:
        """One paid call, the whole rule in one (Policy.pay; `options`: its `stop`)."""
        return self.policy.pay(payment, call, cost_of, **options)

    def try_reserve(self, payment: Payment) -> Hold | Wait | Refused:
        """The split form's first half: one attempt at the call's hold (Policy.try_reserve)."""
        return self.policy.try_reserve(payment)

    def settle_by_fate(
        self, hold: Hold, estimate: Decimal, *, billable: bool, cost: Decimal | None = None, note: str = ""
    ) -> Decimal:
        """The split form's second half: the hold closed by where its request got to (Policy.settle_by_fate);
        the amount counted."""
        return self.policy.settle_by_fate(hold, estimate, billable=billable, cost=cost, note=note)[0]

    def spent(self) -> Decimal:
        """What this payer's first account (a run's own) has spent, holds in flight included."""
        return self.policy.spent(self.accounts()[0].key)


class Paid:
    """A provider whose every hosted call is paid through `payer`; the same id, options and estimate as
    `inner`, so a matte cache still recognises it (a cached matte is never paid). Free (local) providers
    pass straight through. `pays_itself`: a door that already pays (the web app's Guarded) is not wrapped
    again."""

    pays_itself = True

    def __init__(self, inner, payer: Payer):
        self.inner, self.payer = inner, payer
        self.id, self.label, self.kind = inner.id, inner.label, inner.kind

    def options(self):
        return self.inner.options()

    def key_scope(self) -> str:
        return payer_scope(self.inner)

    def status(self):
        return self.inner.status()

    def estimate(self):
        return self.inner.estimate()

    def matte(self, image):
        if self.kind != "hosted" or getattr(self.inner, "pays_itself", False):
            return self.inner.matte(image)
        payment = self.payer.payment(self.id, self.inner.estimate().usd)
        return self.payer.pay(payment, lambda: self.inner.matte(image), lambda matte: matte.cost.usd)


def usd_cap(value: object, name: str = "max_cost") -> Decimal | None:
    """A run's spending cap as its caller gives it (None: no cap of its own; a Decimal, an int, a float such
    as 0.5, or its text, "$" allowed) as Decimal USD; refused (InvalidRequestError naming `name`) when it is
    anything else, NaN, infinite or below 0. Every door's cap goes through here (Payer.operator, the command
    line's --max-cost) before anything runs: a float once failed at the first paid call, in the ledger."""
    if value is None:
        return None
    usd: Decimal | None = None
    if isinstance(value, Decimal):
        usd = value
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        typed = number_text(name, value) if isinstance(value, str) else str(value)  # Decimal() reads "０.５" too
        try:
            usd = Decimal(typed.strip().removeprefix("$"))
        except InvalidOperation:
            usd = None
    if usd is None or not usd.is_finite() or usd < 0:
        raise InvalidRequestError(f"{name} must be an amount of USD, 0 or more, not {str(value)[:40]!r}.")
    return usd


def operator_day(now: float) -> Account:
    """The day's total of the operator's keys (`day:<UTC date>` of `now`), capped only where the operator set
    RMBG_DAILY_CAP_USD (its declared default is the web app visitors' cap, never the operator's own runs':
    rmbg.settings_declared)."""
    from ..settings import current

    daily = current().decimal("RMBG_DAILY_CAP_USD") if current().raw("RMBG_DAILY_CAP_USD") else None
    return Account(day_key(now), daily)


def operator_words(refused: Refused, payment: Payment) -> str:
    """A refusal of a call on the operator's own keys: by the day's cap, what RMBG_DAILY_CAP_USD allows and
    how to go on; by a run's own cap (--max-cost, max_cost=), rmbg.money.paying.refusal_words's."""
    if refused.account.key.partition(":")[0] != "day":
        return refusal_words(refused, payment)
    cap = refused.account.cap or Decimal(0)
    return (
        f"The daily budget of the operator's keys would be passed: RMBG_DAILY_CAP_USD is ${format_usd(cap)} per "
        f"UTC day, ${format_usd(refused.spent)} is spent or held today, and {payment.provider} costs about "
        f"${format_usd(payment.estimate)} {payment.unit}. Nothing was sent; raise RMBG_DAILY_CAP_USD, or use a "
        "local model."
    )


class _Named(Policy):
    """The rule on the ledger `spec` names, asked for at each use (open_ledger keeps one object per spec,
    cheap to ask), so one closed and opened again (rmbg.money.ledger.close_all) is followed, never used closed."""

    def __init__(self, spec: str):
        super().__init__()
        self.spec = spec

    @property
    def ledger(self):  # -> SqlLedger
        return open_ledger(self.spec)


_LIBRARY: dict[str, Payer] = {}
_LIBRARY_LOCK = threading.Lock()


def library() -> Payer:
    """Who pays for the library's own hosted calls (rmbg.remove_background, rmbg.compare,
    rmbg.replace_background): the operator, on their own keys (Payer.operator("library")): an account
    `library:<id>` of this process, uncapped, and the day's total, capped only where RMBG_DAILY_CAP_USD is
    set. One per ledger (RMBG_LEDGER) in a process, so a close the ledger failed to write is written at the
    process's next library call (rmbg.money.ledger.unsettled). Made only for a hosted call: a free one opens no
    ledger."""
    from .ledger import configured

    where = configured()
    with _LIBRARY_LOCK:
        payer = _LIBRARY.get(where)
        if payer is None:
            payer = _LIBRARY[where] = Payer.operator("library", policy=_Named(where))
        return payer
