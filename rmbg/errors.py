"""The rmbg error tree.

The library raises these and never prints or exits. Messages are written for
a person: they say what went wrong and what to do. No message ever contains
an API key or token.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar


@dataclass(frozen=True)
class Remedy:
    """What would fix an error, as facts rather than words, so that each front
    door (Python, CLI, web page, REST, MCP) can say it in its own terms
    (rmbg.wording). The error's own message keeps the Python wording.

    kind: "key" (an API key: `subject` is its environment variable),
        "weights" (a model file that cannot be had), "model" (a
        save_pretrained folder that cannot be had), "framing" (a margin or
        alignment without crop or canvas: `subject` is the field) or "licence"
        (a provider refused for its licence: `subject` is its id).
    situation: what went wrong, without the how-to-fix.
    """

    kind: str
    situation: str
    subject: str = ""


class RmbgError(Exception):
    """Base class of every error rmbg raises on purpose.

    `remedy`, when set, is the fix as facts (see Remedy); None means the
    message is the same for every front door. `counted_usd`, when set, is
    what the failed paid call was counted at against the caps (it may have
    been billed: rmbg.money.paying.Policy.pay), for a door to tell."""

    remedy: Remedy | None = None
    counted_usd: Decimal | None = None


E = TypeVar("E", bound=RmbgError)


def with_remedy(exc: E, kind: str, situation: str, subject: str = "") -> E:
    """`exc` with its Remedy set (returned, to be raised)."""
    exc.remedy = Remedy(kind, situation, subject)
    return exc


def without_credentials(url: str) -> str:
    """`url` as a message, a status, a repr or a log may show it: without the user name and password its
    address may carry (a private mirror's token, a proxy's password); `url` itself when it carries none."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if "@" in parts.netloc else url


class UnknownProviderError(RmbgError, KeyError):
    """A provider id that is not registered, or not of the kind asked for (a
    background replacer where a removal provider is wanted, or the reverse).
    The message lists the valid ids."""

    def __init__(self, provider_id: str, known: list[str], message: str = "", *, near: str = ""):
        self.provider_id = provider_id
        self.known = list(known)
        self.near = near  # the id meant, most likely (rmbg.provider_table.nearest); "" when none is close
        meant = f" Did you mean {near!r}?" if near else ""
        said = f"Unknown provider {provider_id!r}.{meant} Valid providers: {', '.join(self.known)}."
        super().__init__(f"{message}{meant}" if message else said)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class MissingCredentialsError(RmbgError):
    """A hosted provider was used without an API key."""

    def __init__(self, provider_id: str, env_var: str, where: str = ""):
        self.provider_id = provider_id
        self.env_var = env_var
        hint = f" Get a key at {where}." if where else ""
        super().__init__(
            f"{provider_id} needs an API key: pass api_key=... or set the environment variable {env_var}.{hint}"
        )
        self.remedy = Remedy("key", f"{provider_id} needs an API key.", env_var)


class InvalidImageError(RmbgError, ValueError):
    """The input is not an image we can process (corrupt, empty, too large, ...)."""


class InvalidRequestError(RmbgError, ValueError):
    """The arguments of a call are invalid (e.g. both a prompt and a reference
    image, a seed out of range); found before anything is sent."""


class ModelUnavailableError(RmbgError):
    """Model weights cannot be had: gated repo, no token, offline, failed download."""


class LicenceError(RmbgError):
    """A provider whose licence this installation refuses (RMBG_COMMERCIAL_ONLY=1 and
    weights or terms that do not allow commercial use, or are not known to): refused
    before anything is built, downloaded, run or paid (rmbg.licences)."""

    def __init__(self, provider_id: str, message: str, situation: str):
        self.provider_id = provider_id
        super().__init__(message)
        self.remedy = Remedy("licence", situation, provider_id)


class ConfigurationError(RmbgError, ValueError):
    """An RMBG_* setting whose value cannot be used; the message names it and says what it takes."""


class UsageError(RmbgError):
    """A command line that cannot run as given (exit code 2); also what the Ray engines refuse
    before they start (rmbg.ray_cluster), from the command line or the Python API."""


class BudgetError(RmbgError):
    """A spending cap would be exceeded by the next paid call."""


class ServerBusy(RmbgError):
    """The server's room for this kind of work stayed full (a clip's memory, paid calls waiting for
    room under a cap); nothing was sent to any provider (HTTP 503: try again later)."""


class ProviderError(RmbgError):
    """A provider failed to return a matte."""

    def __init__(self, provider_id: str, message: str):
        self.provider_id = provider_id
        super().__init__(f"{provider_id}: {message}")


class ProviderHTTPError(ProviderError):
    """A hosted provider answered with an error, or not at all.

    Whether it may have been billed is not the error's type or status but
    where the request got to: rmbg.money.charging.

    `status` is the HTTP status (None when no response arrived); `excerpt` is a
    short, key-free excerpt of the response body.
    """

    def __init__(self, provider_id: str, message: str, *, status: int | None = None, excerpt: str = ""):
        self.status = status
        self.excerpt = excerpt
        super().__init__(provider_id, message)


class ProviderAuthError(ProviderHTTPError):
    """Wrong or missing key (401/403 that is not about credit)."""


class ProviderCreditError(ProviderHTTPError):
    """The account is out of credit (402, or fal's 'Exhausted balance' lock)."""


class ProviderRejectedError(ProviderHTTPError):
    """The provider refused this input (400/422), with its own reason."""


class ProviderRateLimitError(ProviderHTTPError):
    """Rate limited (429) and still limited after retrying."""


class ProviderUnavailableError(ProviderHTTPError):
    """The provider is down (5xx) or unreachable, after retrying."""


class ProviderTimeoutError(ProviderHTTPError):
    """The call took longer than its deadline."""


class ProviderResponseError(ProviderHTTPError):
    """The provider answered, but the answer is malformed (not JSON, no image, wrong size)."""


__all__ = [
    "Remedy",
    "with_remedy",
    "RmbgError",
    "UnknownProviderError",
    "MissingCredentialsError",
    "InvalidImageError",
    "InvalidRequestError",
    "ModelUnavailableError",
    "LicenceError",
    "ConfigurationError",
    "BudgetError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderAuthError",
    "ProviderCreditError",
    "ProviderRejectedError",
    "ProviderRateLimitError",
    "ProviderUnavailableError",
    "ProviderTimeoutError",
    "ProviderResponseError",
]
