"""Which fake serves each hosted provider, and the key it accepts.

The contract test (tests/test_contract.py) builds every hosted provider
listed here against its fake: a new hosted provider on an existing fake
needs one line here, a new vendor its fake and one line.
"""

from __future__ import annotations

from .common import FakeServer
from .fal import TEST_KEY as FAL_KEY
from .fal import FalFake
from .photoroom import TEST_KEY as PHOTOROOM_KEY
from .photoroom import PhotoroomFake
from .removebg import TEST_KEY as REMOVEBG_KEY
from .removebg import RemoveBgFake
from .runware import TEST_KEY as RUNWARE_KEY
from .runware import RunwareFake

FAKES: dict[str, tuple[type[FakeServer], str]] = {
    "fal-bria": (FalFake, FAL_KEY),
    "fal-rmbg-3": (FalFake, FAL_KEY),
    "runware-bria": (RunwareFake, RUNWARE_KEY),
    "runware-rembg": (RunwareFake, RUNWARE_KEY),
    "runware-birefnet": (RunwareFake, RUNWARE_KEY),
    "runware-birefnet-512": (RunwareFake, RUNWARE_KEY),
    "runware-birefnet-massive": (RunwareFake, RUNWARE_KEY),
    "runware-birefnet-matting": (RunwareFake, RUNWARE_KEY),
    "runware-birefnet-portrait": (RunwareFake, RUNWARE_KEY),
    "remove-bg": (RemoveBgFake, REMOVEBG_KEY),
    "photoroom": (PhotoroomFake, PHOTOROOM_KEY),
}
KEYS = tuple(sorted({key for _, key in FAKES.values()}))
