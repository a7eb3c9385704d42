"""Runware's error answers, read once: what each `code` means for the user
(which ProviderHTTPError, in which words) and for the money (rmbg.charging:
a refused key, no credit, the rate or a rejected input were not billed; a
failure on Runware's side may have run, so it may be billed).

Runware reports errors in an `{"errors": [...]}` list, a singular `error`
object, or per task item (`status: "error"`); all three are read here.
"""

from __future__ import annotations

from ...charging import Charge, charge_of_status
from ...errors import (
    ProviderAuthError,
    ProviderCreditError,
    ProviderHTTPError,
    ProviderRateLimitError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
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


CODE_CLASSES = (
    (
        ("invalidApiKey", "unauthorized", "missingApiKey"),
        ProviderAuthError,
        "the API key was rejected: {r}. Check " + KEY_ENV + ".",
    ),
    (
        ("insufficientCredits", "paymentRequired", "quotaExceeded"),
        ProviderCreditError,
        "the account is out of credit: {r}. Top up your balance.",
    ),
    (("rateLimitExceeded",), ProviderRateLimitError, "rate limited: {r}. Try again later."),
    (
        ("timeoutProvider", "requestTimeout"),
        ProviderTimeoutError,
        "timed out on the provider's side: {r}. Try again later.",
    ),
    (
        ("internalServerError", "serviceUnavailable", "inferenceError", "downloadFailed"),
        ProviderUnavailableError,
        "failed on the provider's side: {r}. Try again later.",
    ),
)


NOT_OUR_FAULT = frozenset(
    code
    for codes, cls, _ in CODE_CLASSES
    for code in codes
    if cls in (ProviderRateLimitError, ProviderTimeoutError, ProviderUnavailableError)
)


UNBILLED_ERRORS = (ProviderAuthError, ProviderCreditError, ProviderRateLimitError, ProviderRejectedError)


def runware_charge(response) -> Charge:
    """What Runware's answer to the paid task says about its charge
    (rmbg.charging): an answer carrying errors is read by their code (a
    refused key, no credit, the rate, a rejected input: not billed; a failure
    on Runware's side: it may have run, so it may be billed); other answers
    by their status (4xx, 408 and 429 refused; 2xx and 5xx unknown until
    our task's result is read)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = error_list(body) if isinstance(body, dict) else []
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        errors += [item_error(i) for i in body["data"] if isinstance(i, dict) and i.get("status") == "error"]
    if errors:
        return Charge.REFUSED if isinstance(code_error("", errors[0]), UNBILLED_ERRORS) else Charge.UNKNOWN
    return charge_of_status(response.status_code, lambda status: status in (408, 429))


def code_error(provider_id: str, error: dict, secrets=(), status: int | None = None) -> ProviderHTTPError:
    """The ProviderHTTPError for a Runware error item, by its `code`."""
    code = str(error.get("code") or "")
    reason = scrub(_describe(error), secrets)
    for codes, cls, text in CODE_CLASSES:
        if code in codes:
            return cls(provider_id, text.format(r=reason), status=status, excerpt=reason)
    kind: type[ProviderHTTPError] = ProviderHTTPError
    message = f"failed: {reason}"
    if code.startswith(("invalid", "missing", "unsupported", "unknown")) or code in (
        "contentPolicyViolation",
        "nsfwContentDetected",
    ):
        kind, message = ProviderRejectedError, f"rejected the image: {reason}"
    elif code.startswith("provider"):
        kind, message = ProviderUnavailableError, f"failed on the provider's side: {reason}. Try again later."
    return kind(provider_id, message, status=status, excerpt=reason)


def task_failure(provider_id: str, response, secrets=()) -> ProviderHTTPError | None:
    """A task failure Runware sends with a 4xx status that is not about our input (a provider timeout,
    a server error), named by its code; None for anything else (the mapping by HTTP status stands)."""
    if response.status_code not in (400, 404, 409, 422):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    errors = error_list(body) if isinstance(body, dict) else []
    if not errors or str(errors[0].get("code")) not in NOT_OUR_FAULT:
        return None
    return code_error(provider_id, errors[0], secrets, status=response.status_code)
