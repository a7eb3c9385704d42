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
UNLABELLED = re.compile(r"^value_\d+$")  # gradio names an unlabelled component by its id, which varies


def endpoints(demo) -> dict:
    """The named endpoints as gradio_client sees them; the provider defaults (the default model and the
    ticked ones depend on the machine) are written as "<default>"."""
    found = {}
    for name, ep in demo.get_api_info()["named_endpoints"].items():
        params = []
        for p in ep["parameters"]:
            default = p.get("parameter_default")
            if p.get("parameter_name") in ("provider", "providers"):
                default = "<default>"
            params.append(
                [p.get("parameter_name"), p.get("label"), p.get("component"), p.get("parameter_has_default"), default]
            )
        returns = [[UNLABELLED.sub("value", r.get("label") or ""), r.get("component")] for r in ep["returns"]]
        found[name] = {"parameters": params, "returns": returns}
    return found


@pytest.fixture(scope="module")
def built():
    import app
    from rmbg.webapp import AppConfig

    return app.build_demo(AppConfig())


def test_the_named_api_is_the_stored_one(built):
    assert endpoints(built) == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
