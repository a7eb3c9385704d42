"""An error's `excerpt` (the vendor's answer, quoted for whoever reads the error) never holds a key.

The message of every hosted error was scrubbed of the key, but several places quoted a vendor's
unusable 200 answer as the excerpt without the call's secrets (Photoroom's and remove.bg's uploads,
fal's submit, Runware's task list): a body that echoed the key (a proxy's debug echo, a vendor's
"key ... has no plan") reached `ProviderHTTPError.excerpt` whole. Each provider's first POST here
answers 200 with a body quoting its key every way a body could: whole, each half of fal's id:secret,
as a header value."""

from __future__ import annotations

import pytest
from PIL import Image

import rmbg
from rmbg.errors import ProviderHTTPError
from rmbg.providers.hosted.payload import excerpt, remember
from rmbg.providers.hosted.retry import RetryPolicy
from tests.fakes.common import Call, Reply
from tests.fakes.hosted import FAKES


def echoing(key: str) -> dict:
    echo = {"x-api-key": key, "authorization": f"Key {key}"}
    return {"note": f"key {key} has no plan", "echo": echo, "parts": key.split(":")}


@pytest.mark.parametrize("provider_id", ["photoroom", "remove-bg", "runware-rembg", "fal-bria"])
def test_an_unusable_answer_quoting_the_key_is_excerpted_without_it(provider_id):
    fake_class, key = FAKES[provider_id]
    with fake_class() as fake:
        own = fake.handle

        def handle(call: Call) -> Reply:
            return Reply.json(200, echoing(key)) if call.method == "POST" else own(call)

        fake.handle = handle  # type: ignore[method-assign]
        provider = rmbg.get_provider(
            provider_id, api_key=key, base_url=fake.url, retry=RetryPolicy.immediate(max_attempts=1)
        )
        with pytest.raises(ProviderHTTPError) as raised:
            rmbg.remove_background(Image.new("RGB", (24, 16), (30, 120, 200)), provider, cache=None)
    error = raised.value
    assert error.excerpt  # the answer is quoted: only without the key
    for secret in (key, *key.split(":")):
        assert secret not in error.excerpt, error.excerpt
        assert secret not in str(error)


def test_an_excerpt_made_without_the_calls_secrets_still_hides_the_keys_in_use():
    """The class, not the four places: any excerpt hides every key this process is using."""
    remember("visitor-typed-key-0123456789")
    text = excerpt('{"echo": "visitor-typed-key-0123456789", "half": "typed-key-0123"}')
    assert "visitor-typed-key" not in text and "key-0123" not in text
    assert text.startswith('{"echo": "***"')
