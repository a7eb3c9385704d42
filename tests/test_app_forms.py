"""The app's endpoints take named values: each form is one dataclass
(rmbg.webapp.ui.forms) whose fields are wired to exactly one control each, and
the named API (parameter names, order, labels, components, defaults) is the
one stored in tests/fixtures/api_endpoints.json, so reordering a control or a
field cannot silently send a value to the wrong parameter."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest

SNAPSHOT = Path(__file__).parent / "fixtures" / "api_endpoints.json"
UNLABELLED = re.compile(r"^(value|parameter)_\d+$")  # gradio names an unlabelled component by its id, which varies


def endpoints(demo) -> dict:
    """The named endpoints as gradio_client sees them; the provider defaults (the default model and the
    ticked ones depend on the machine) are written as "<default>"."""
    found = {}
    for name, ep in demo.get_api_info()["named_endpoints"].items():
        params = []
        for p in ep["parameters"]:
            default = p.get("parameter_default")
            if p.get("parameter_name") in ("provider", "providers", "provider_a", "provider_b"):
                default = "<default>"
            label = UNLABELLED.sub(r"\1", p.get("label") or "")
            params.append([p.get("parameter_name"), label, p.get("component"), p.get("parameter_has_default"), default])
        returns = [[UNLABELLED.sub(r"\1", r.get("label") or ""), r.get("component")] for r in ep["returns"]]
        found[name] = {"parameters": params, "returns": returns}
    return found


@pytest.fixture(scope="module")
def built():
    import app
    from rmbg.webapp import AppConfig

    return app.build_demo(AppConfig())


def test_the_named_api_is_the_stored_one(built):
    assert endpoints(built) == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_inputs_are_built_by_field_name_and_refuse_a_missing_or_extra_control():
    from rmbg.webapp.ui.forms import ReplaceForm

    controls = {name: f"control for {name}" for name in ReplaceForm.names()}
    assert ReplaceForm.inputs(dict(reversed(controls.items()))) == [f"control for {n}" for n in ReplaceForm.names()]
    with pytest.raises(ValueError, match=r"no control for \['seed'\]; controls without a field: \['sead'\]"):
        ReplaceForm.inputs({("sead" if n == "seed" else n): c for n, c in controls.items()})


def test_a_handler_receives_the_form_by_name_with_the_fields_defaults():
    import inspect

    from rmbg.webapp.ui.forms import Call, RerenderForm, endpoint

    seen = []

    def body(form: RerenderForm, call: Call) -> str:
        seen.append((form, call.state))
        return "done"

    handler = endpoint(RerenderForm, body, "rerender")
    params = inspect.signature(handler).parameters
    assert list(params)[:3] == ["state", "background", "colour"] and list(params)[-1] == "request"
    assert params["format"].default == "png" and params["align"].default is None
    assert handler("the state", "colour", "#00ff00", format="webp", crop=True, canvas="1:1") == "done"
    form, state = seen[0]
    assert state == "the state" and (form.background, form.colour, form.format) == ("colour", "#00ff00", "webp")
    look = form.look()
    assert look.background == "colour" and look.fmt == "webp" and look.framing is not None
    assert look.framing.aspect and look.framing.canvas[0] == look.framing.canvas[1]  # a 1:1 aspect


def test_every_value_a_form_takes_has_the_check_of_its_type():
    """Each form field is typed with a kind (rmbg.webapp.inputs) whose check runs before the handler, an
    uploaded image's (its file's size) too: only the MCP tool's image (a URL or a data: URI, held to its
    limits where it is read) and the Benchmark's files (rmbg.webapp.benchmark.uploads) go without one."""
    from rmbg.webapp.ui.forms import BenchmarkForm, CompareForm, McpForm, RemoveForm, ReplaceForm, RerenderForm

    forms = (RemoveForm, RerenderForm, CompareForm, ReplaceForm, BenchmarkForm, McpForm)
    unchecked = {(form.__name__, name) for form in forms for name in form.names() if name not in form.checks()}
    assert unchecked == {("McpForm", "image"), ("BenchmarkForm", "images"), ("BenchmarkForm", "truth")}
    kinds = {name: check.kind for form in forms for name, check in form.checks().items()}
    assert (kinds["seed"], kinds["num_images"], kinds["margin"], kinds["fal_key"]) == ("seed", "count", "size", "key")
    assert kinds["image"] == kinds["background_image"] == kinds["reference_image"] == "image file"


def test_a_check_follows_the_parameters_type_not_its_name():
    from typing import Any

    import gradio as gr

    from rmbg.webapp.inputs import Flag, Volume
    from rmbg.webapp.ui.common import readable_errors

    def handler(provider: Any, zzz: Flag = False, pages: Volume = None) -> str:
        return "ran"

    checked = readable_errors(handler)
    assert checked(["a", "list"], "true", "12") == "ran"  # an untyped "provider" is the handler's to read
    with pytest.raises(gr.Error) as flag:
        checked("u2netp", [1])
    with pytest.raises(gr.Error) as volume:
        checked("u2netp", pages=-3)
    assert flag.value.message == "zzz must be true or false, got [1]."
    assert volume.value.message == "Images per month must be a whole number (0 or more), got '-3'."


def test_no_control_starts_two_queued_events_at_once(built):
    """A control's event starts at most one queued function on the server. Two queued functions on the
    same key boxes (the Remove menu's and the Video menus') made gradio's page re-fire the boxes' change
    events about three times a second, for good, once two keys were typed in quick succession
    (tests/test_browser.py types them). Changes shown at once in the page (queue=False: a colour box
    shown for the colour background) run beside a queued function without that effect."""
    started: dict[tuple, list[str]] = {}
    for fn in built.fns.values():
        if fn.fn is None or not fn.queue:
            continue
        for block_id, event in fn.targets:
            if block_id is not None:  # .then/.success chains follow one function, not a control
                started.setdefault((block_id, event), []).append(fn.name)
    shared = {
        f"{getattr(built.blocks[block], 'elem_id', None) or built.blocks[block].label}.{event}": names
        for (block, event), names in started.items()
        if len(names) > 1
    }
    assert shared == {}
