"""Runware's error answers, read once: what each `code` means for the user
(which ProviderHTTPError, in which words) and for the money (rmbg.money.charging:
a refused key, no credit, the rate, a rejected input or content were not
billed; a failure on Runware's side may have run, so it may be billed).
Codes are read by family, as the official runware-sdk sorts them (its
errors.py), not from an exact list: a code Runware adds later is read as
what its family is.

Runware reports errors in an `{"errors": [...]}` list, a singular `error`
object, or per task item (`status: "error"`); all three are read here.
"""

from __future__ import annotations

from ...errors import (
    ProviderAuthError,
    ProviderCreditError,
    ProviderHTTPError,
    ProviderRateLimitError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from ...money.charging import Charge, charge_of_status
from ...vendors import vendor
from .payload import excerpt, scrub

VENDOR = vendor("runware")  # the vendor its key is paid to (rmbg.vendors)
KEY_ENV = VENDOR.key_env


def error_list(body: dict) -> list[dict]:
    errors = body.get("errors")
    found = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    if isinstance(body.get("error"), dict):  # the singular form some errors use
        found.append({**body["error"], "taskUUID": body.get("taskUUID")})
    return found


def item_error(item: dict) -> dict:
    inner: dict = item["error"] if isinstance(item.get("error"), dict) else {}
    return {"code": inner.get("code", "error"), "message": inner.get("message", ""), "taskUUID": item.get("taskUUID")}


def _describe(error: dict) -> str:
    message = str(error.get("message") or "").strip()[:200].rstrip(". ")
    code = str(error.get("code") or "").strip()[:60]
    param = error.get("parameter")
    extra = ", ".join(x for x in (code, f"parameter {param}" if param else "") if x)
    return f"{message} ({extra})" if message and extra else (message or extra or "unknown error")


def runware_reason(response) -> str:
    """Runware's own error text from an `{"errors": [...]}` body."""
    try:
        body = response.json()
    except ValueError:
        return excerpt(response.text, limit=120)
    errors = error_list(body) if isinstance(body, dict) else []
    return _describe(errors[0]) if errors else ""


# The families runware-sdk sorts error codes into (its errors.py), and what each means here:
# (the error, its words, whether Runware bills it). A refusal (the key, the balance, the rate,
# the input, the content) is not billed: its hold is released. A failure on Runware's side may
# have run, so it is kept as "may have been billed".
FAMILIES: dict[str, tuple[type[ProviderHTTPError], str, bool]] = {
    "auth": (ProviderAuthError, "the API key was rejected: {r}. Check " + KEY_ENV + ".", False),
    "quota": (ProviderCreditError, "the account is out of credit: {r}. Top up your balance.", False),
    "rateLimit": (ProviderRateLimitError, "rate limited: {r}. Try again later.", False),
    "safety": (
        ProviderRejectedError,
        "refused the image under its content policy: {r}. Sending it again will not change that; use another "
        "image or provider.",
        False,
    ),
    "validation": (ProviderRejectedError, "rejected the image: {r}", False),
    "timeout": (ProviderTimeoutError, "timed out on the provider's side: {r}. Try again later.", True),
    "serverError": (ProviderUnavailableError, "failed on the provider's side: {r}. Try again later.", True),
    "provider": (ProviderUnavailableError, "failed on the provider's side: {r}. Try again later.", True),
}
AUTH = frozenset(
    "invalidApiKey unauthorized missingApiKey forbidden authenticationFailed invalidCredentials tokenExpired "
    "accountSuspended".split()
)
SAFETY = frozenset(
    "contentPolicyViolation nsfwContentDetected providerContentPolicyViolation sensitiveContentDetected "
    "unsafeContentDetected imageBlocked moderationFailed".split()
)
PROVIDER = frozenset(
    "inferenceError downloadFailed noAvailableServer modelUnavailable processingFailed taskFailed uploadFailed".split()
)


def family(code: str) -> str | None:
    """The runware-sdk family of an error `code` (None: not one it names): by family, not by an exact
    list, so a code Runware adds later (`expiredApiKey`, `insufficientBalance`) is read as what it is."""
    if code in AUTH or "ApiKey" in code:
        return "auth"
    if code == "paymentRequired" or any(word in code.lower() for word in ("credit", "quota", "balance")):
        return "quota"
    if code == "rateLimitExceeded":
        return "rateLimit"
    if code in ("timeoutProvider", "requestTimeout"):
        return "timeout"
    if code in SAFETY:
        return "safety"  # before "provider*": providerContentPolicyViolation is a refusal, not an outage
    if code in ("internalServerError", "serviceUnavailable"):
        return "serverError"
    if code in PROVIDER or code.startswith("provider"):
        return "provider"
    if code.startswith(("invalid", "missing", "unsupported", "unknown")):
        return "validation"
    return None


def runware_charge(response) -> Charge:
    """What Runware's answer to the paid task says about its charge
    (rmbg.money.charging): an answer carrying errors is read by their code's family
    (a refused key, no credit, the rate, a rejected input or content: not
    billed; a failure on Runware's side, or a code of no known family: it may
    have run, so it may be billed); other answers by their status (4xx, 408
    and 429 refused; 2xx and 5xx unknown until our task's result is read)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = error_list(body) if isinstance(body, dict) else []
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        errors += [item_error(i) for i in body["data"] if isinstance(i, dict) and i.get("status") == "error"]
    if errors:
        kind = family(str(errors[0].get("code") or ""))
        return Charge.UNKNOWN if kind is None or FAMILIES[kind][2] else Charge.REFUSED
    return charge_of_status(response.status_code, lambda status: status in (408, 429))


def code_error(provider_id: str, error: dict, secrets=(), status: int | None = None) -> ProviderHTTPError:
    """The ProviderHTTPError for a Runware error item, by its code's family."""
    reason = scrub(_describe(error), secrets)
    kind = family(str(error.get("code") or ""))
    if kind is None:
        return ProviderHTTPError(provider_id, f"failed: {reason}", status=status, excerpt=reason)
    cls, text, _ = FAMILIES[kind]
    return cls(provider_id, text.format(r=reason), status=status, excerpt=reason)


def task_failure(provider_id: str, response, secrets=()) -> ProviderHTTPError | None:
    """A task failure Runware sends with a 4xx status that is not a plain invalid input (a provider
    timeout, a server error, a content refusal, the key or the balance), named by its code's family;
    None for anything else (the mapping by HTTP status stands)."""
    if response.status_code not in (400, 404, 409, 422):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    errors = error_list(body) if isinstance(body, dict) else []
    if not errors or family(str(errors[0].get("code"))) in (None, "validation"):
        return None
    return code_error(provider_id, errors[0], secrets, status=response.status_code)
