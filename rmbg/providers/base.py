"""The provider interface.

A provider is one small object: an id, a label, a price, whether it needs a
key, and one method that returns an alpha matte. Local and hosted providers,
and the fakes in the tests, all satisfy this Protocol without inheriting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from ..types import Cost, Generated, Matte, ReplaceRequest

State = Literal["ready", "needs_key", "needs_token", "unavailable"]


@dataclass(frozen=True)
class ProviderStatus:
    """Whether a provider can run here, as it is, and what to do if not.

    state: "ready"; "needs_key" (hosted, no API key); "needs_token" (gated
    Hub weights not cached and no HF_TOKEN); "unavailable" (cannot run here).
    slow: True for a local model that will take many seconds per image here
    (e.g. RMBG-2.0 without a GPU).
    message: one line for a person, e.g. "needs FAL_KEY".
    """

    state: State
    message: str = ""
    slow: bool = False

    @property
    def ready(self) -> bool:
        return self.state == "ready"


@runtime_checkable
class Provider(Protocol):
    id: str
    label: str
    kind: Literal["local", "hosted"]

    def options(self) -> Mapping[str, object]:
        """Options that change the matte (part of the cache key and of the
        provenance). Never contains secrets."""
        ...

    def status(self) -> ProviderStatus:
        """Cheap check (no download, no paid call) of whether this can run."""
        ...

    def estimate(self) -> Cost:
        """Expected cost of one image, before running (for budgets)."""
        ...

    def matte(self, image: Image.Image) -> Matte:
        """Alpha matte of an RGB image: mode "L", same size as `image`."""
        ...


@runtime_checkable
class Replacer(Protocol):
    """A background replacer: new backgrounds generated behind an image's
    subject (rmbg.replace_background). Not a removal provider: it returns
    finished images, not a matte, and is never offered where one is chosen."""

    id: str
    label: str
    kind: Literal["replace"]

    def status(self) -> ProviderStatus:
        """Cheap check (no paid call) of whether this can run."""
        ...

    def estimate(self, num_images: int = 1) -> Cost:
        """Expected cost of one request for `num_images` images, before sending it."""
        ...

    def replace(self, image: Image.Image, request: ReplaceRequest) -> Generated:
        """New backgrounds behind the subject of an RGB image."""
        ...
