"""ZIP archives built in memory, for the tests that feed archives to rmbg (uploads of a folder,
remove.bg's format=zip answers)."""

from __future__ import annotations

import io
import zipfile


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The bytes of a ZIP holding `members` (name -> content), in their order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()
