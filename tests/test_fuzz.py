"""Bounded fuzzing in CI: hypothesis over option, framing, colour and size
parsing, input checks, key scrubbing and raw-call checks. Each property
runs a fixed number of examples (the longer run is benchmarks/fuzz.py).
The schemathesis run shares the launched app of tests/test_hostile.py."""

from __future__ import annotations

import json
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rmbg.errors import RmbgError
from rmbg.image.framing import check_budget, framing_of, layout, output_budget
from rmbg.providers.hosted.payload import FRAGMENT, scrub
from rmbg.webapp import inputs
from rmbg.webapp.look import Look, picker_colour
from rmbg.webapp.rawcalls import Slot, problem, urls_of
from rmbg.webapp.rest.types import FIELDS, Fields, fields_of
from rmbg.webapp.ui.forms import BenchmarkForm, CompareForm, McpForm, RemoveForm, ReplaceForm, RerenderForm

# Every kind of value a form's field may be (rmbg.webapp.inputs), by its name.
KINDS = {
    check.kind: check
    for form in (RemoveForm, RerenderForm, CompareForm, ReplaceForm, BenchmarkForm, McpForm)
    for check in form.checks().values()
}

# benchmarks/fuzz.py raises these for its longer run
EXAMPLES = int(os.environ.get("RMBG_FUZZ_EXAMPLES") or 150)
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

# What a JSON caller can put in any slot (NaN and infinities included: Python's json reads them).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
SIZES = st.one_of(
    st.from_regex(r"\A\s?\d{1,6}\s?[x×*X]\s?\d{1,6}\s?\Z"),
    st.from_regex(r"\A\d{1,3}(\.\d{1,3})?:\d{1,3}\Z"),
    st.sampled_from(["none", "", "1:1", "4:5"]),
    st.text(max_size=12),
)
MARGINS = st.one_of(
    st.from_regex(r"\A\d{1,5}(\.\d{1,2})?\s?(%|px|PX)?\Z"),
    st.integers(-5, 30_000),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.none(),
)


@FAST
@given(crop=JSON, canvas=st.one_of(SIZES, JSON), margin=st.one_of(MARGINS, JSON), align=JSON)
def test_framing_options_parse_or_say_why(crop, canvas, margin, align):
    try:
        framing_of(crop, canvas, margin, align)
    except RmbgError:
        pass


@FAST
@given(
    width=st.integers(1, 9000),
    height=st.integers(1, 9000),
    crop=st.booleans(),
    canvas=st.one_of(st.none(), SIZES),
    margin=MARGINS,
    align=st.sampled_from(["center", "bottom"]),
    box=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
)
def test_a_frame_that_passes_the_budget_is_never_refused_later(width, height, crop, canvas, margin, align, box):
    """The budget is checked on the worst case (the subject filling the photo):
    any real subject box gives a frame no larger, so nothing is refused after a provider ran."""
    try:
        framing = framing_of(crop, canvas, margin, align)
        if framing is None:
            return
        check_budget((width, height), framing)
    except RmbgError:
        return
    x0, x1 = sorted((int(box[0] * width), int(box[2] * width)))
    y0, y1 = sorted((int(box[1] * height), int(box[3] * height)))
    subject = (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
    (w, h), _, _ = layout(subject, framing)
    assert w * h <= output_budget((width, height))


@FAST
@given(
    value=st.one_of(
        st.text(max_size=40),
        st.from_regex(r"\A#[0-9a-fA-F]{3,8}\Z"),
        st.from_regex(r"\Argba?\(\s?[\d.]{1,6},\s?[\d.]{1,6},\s?[\d.]{1,6}(,\s?[\d.]{1,4})?\)\Z"),
    )
)
@example("rgb(., ., .)")  # found by benchmarks/fuzz.py: a lone point was read as a number
@example("rgb(" + "9" * 400 + ", 1, 1)")
def test_colours_parse_to_rgb_or_say_why(value):
    try:
        colour = picker_colour(value)
    except RmbgError:
        return
    assert len(colour) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in colour)


@FAST
@given(value=st.one_of(JSON, st.decimals(), st.from_regex(r"\A\s?\$?-?\d{1,4}(\.\d{1,9})?([eE][+-]?\d{1,3})?\s?\Z")))
@example("1e400")
@example("sNaN")
def test_a_spending_cap_is_a_finite_amount_of_0_or_more_or_refused_in_words(value):
    """rmbg.money.payer.usd_cap (every door's max_cost, --max-cost, --usd): anything a caller may write is a
    Decimal that is finite and 0 or more, equal to what was written, or an InvalidRequestError; nothing else."""
    from decimal import Decimal

    from rmbg.errors import InvalidRequestError
    from rmbg.money.payer import usd_cap
    from rmbg.wording import other_digits

    try:
        cap = usd_cap(value)
    except InvalidRequestError as exc:  # or, in digits other than 0-9 ("٠"), the sentence every number says
        digits = isinstance(value, str) and str(exc) == other_digits("max_cost", value)
        assert digits or str(exc).startswith("max_cost must be an amount of USD, 0 or more, not ")
        return
    if value is None:
        assert cap is None
        return
    assert isinstance(cap, Decimal) and cap.is_finite() and cap >= 0
    assert cap == Decimal(str(value).strip().removeprefix("$")) if not isinstance(value, Decimal) else cap == value


@FAST
@given(
    head=st.binary(min_size=0, max_size=160),
    space=st.sampled_from([b"RGB ", b"GRAY", b"CMYK", b"XYZ "]),
    mode=st.sampled_from(["RGB", "RGBA", "L", "P", "CMYK"]),
)
def test_any_embedded_profile_is_kept_whole_or_dropped_and_the_photo_cut(head, space, mode):
    """rmbg.image.io.icc_of: whatever bytes a photo says are its colour profile, the photo loads, and the
    cut-out carries that profile exactly when LittleCMS reads it as an RGB profile of RGB numbers."""
    import io

    from PIL import Image

    import rmbg
    from tests.support.colour import DISPLAY_P3
    from tests.support.providers import RedIsSubject

    profile = bytearray(head + DISPLAY_P3[len(head) :]) if len(head) < 100 else bytearray(head)
    if len(profile) >= 20:
        profile[16:20] = space
    img = Image.new("RGB", (6, 4), (200, 10, 10)).convert(mode)
    img.info["icc_profile"] = bytes(profile)
    written = Image.open(io.BytesIO(rmbg.remove_background(img, RedIsSubject(), cache=None).encode("png")))
    kept = written.info.get("icc_profile")
    assert kept in (None, bytes(profile))
    if mode == "L" or mode == "CMYK" or space != b"RGB ":
        assert kept is None


@FAST
@given(name=st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_any_file_name_becomes_text_a_utf8_file_takes(name):
    """rmbg.types.name_text: any file name the system may give (bytes, decoded as Python decodes them) is text
    that encodes to UTF-8, itself when it already was, and two different names stay different."""
    import os

    from rmbg.types import name_text

    decoded = os.fsdecode(name)
    text = name_text(decoded)
    text.encode("utf-8")
    try:
        assert text == name.decode("utf-8")
    except UnicodeDecodeError:
        assert "\\x" in text
    assert name_text(os.fsdecode(name + b"\xff")) != text


@FAST
@given(
    values=st.fixed_dictionaries(
        {},
        optional={
            name: JSON
            for name in (
                "background",
                "colour",
                "mask_only",
                "format",
                "refine_edges",
                "crop",
                "canvas",
                "margin",
                "align",
            )
        },
    )
)
def test_any_json_values_are_checked_then_read_or_refused_in_a_sentence(values):
    """The form's checks, then Look.of as the handlers call it: only RmbgErrors, never a TypeError or an
    OverflowError."""
    try:
        inputs.check(values, RerenderForm.checks())
        Look.of(
            values.get("background"),
            values.get("colour"),
            None,
            values.get("mask_only"),
            values.get("format"),
            clean_edges=values.get("refine_edges"),
            crop=values.get("crop"),
            canvas=values.get("canvas"),
            margin=values.get("margin"),
            align=values.get("align"),
        ).options()
    except RmbgError:
        pass


@FAST
@given(values=st.dictionaries(st.sampled_from(sorted(KINDS)), JSON, max_size=6))
def test_the_input_check_refuses_only_with_our_error(values):
    try:
        inputs.check(values, KINDS)
    except RmbgError as exc:
        assert str(exc) and "Traceback" not in str(exc)


@FAST
@given(values=st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), JSON, max_size=6))
def test_any_rest_fields_are_the_model_or_refused_in_a_sentence(values):
    """rest_types.fields_of over any JSON object: the typed Fields with the very values sent, or our error."""
    try:
        fields = fields_of(values)
    except RmbgError as exc:
        assert str(exc) and "Traceback" not in str(exc) and "pydantic" not in str(exc)
        return
    assert isinstance(fields, Fields) and set(values) <= set(FIELDS)
    assert {name: getattr(fields, name) for name in values} == values


KEY_CHARS = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":")


@FAST
@given(
    key_id=st.text(KEY_CHARS, min_size=8, max_size=40),
    secret=st.text(KEY_CHARS, min_size=8, max_size=40),
    start=st.integers(0, 40),
    length=st.integers(FRAGMENT, 40),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_no_piece_of_a_key_survives_scrubbing(key_id, secret, start, length, before, after):
    key = f"{key_id}:{secret}"
    piece = secret[start : start + length] if start + FRAGMENT <= len(secret) else secret
    for quoted in (key, key_id, secret, piece):
        text = scrub(f"{before}{quoted}{after}", [key])
        assert not any(key[i : i + FRAGMENT] in text for i in range(len(key) - FRAGMENT + 1)), text


SLOTS = {
    "remove": [Slot("session state (null)"), Slot("Image", file=True), Slot("Provider")],
    "benchmark": [Slot("Images", file=True, many=True), Slot("Providers")],
}


@FAST
@given(body=st.one_of(st.binary(max_size=200), JSON.map(lambda v: __import__("json").dumps({"data": v}).encode())))
def test_raw_call_bodies_get_a_sentence_or_pass(body):
    for name in SLOTS:
        answer = problem(name, body, SLOTS)
        assert answer is None or (isinstance(answer, str) and answer)


UPLOADED = {"path": "/tmp/gradio/a.png", "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize(
    "name, images, why",
    [
        ("benchmark", [UPLOADED, UPLOADED], None),  # several files where several are taken
        ("benchmark", UPLOADED, None),
        ("benchmark", [], None),
        (
            "benchmark",
            [UPLOADED, "a.png"],
            'Images must be a file object, {"path": ...} for a file uploaded to '
            "/gradio_api/upload (gradio_client's handle_file() makes one) or null; got a plain string.",
        ),
        (
            "benchmark",
            [UPLOADED, {"path": "a.png"}],
            'Images: the file\'s "path" must be the path /gradio_api/upload returned, or an http(s) URL of an image.',
        ),
        (
            "benchmark",
            "a.png",
            'Images must be a list of file objects, {"path": ...} for a file uploaded to '
            "/gradio_api/upload (gradio_client's handle_file() makes one) or null; got a plain string.",
        ),
        (
            "remove",
            [UPLOADED],
            'Image must be a file object, {"path": ...} for a file uploaded to '
            "/gradio_api/upload (gradio_client's handle_file() makes one) or null; got a value of type list.",
        ),
    ],
)
def test_file_inputs_that_take_several_take_a_list_of_file_objects(name, images, why):
    body = json.dumps({"data": [None, images, "x"] if name == "remove" else [images, ["x"]]}).encode()
    assert problem(name, body, SLOTS) == why


def test_every_url_in_a_list_of_files_goes_to_the_guard():
    listed = [UPLOADED, {"path": "http://10.0.0.1/a.png"}, {"path": "HTTPS://example.com/b.png"}]
    body = json.dumps({"data": [listed, ["x"]]}).encode()
    assert urls_of(body, "benchmark", SLOTS) == ["http://10.0.0.1/a.png", "HTTPS://example.com/b.png"]
