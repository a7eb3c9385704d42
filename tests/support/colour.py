"""ICC profiles for tests, written byte by byte from the ICC v2 layout (a 128-byte header, a tag table,
the tags): a matrix/curve RGB profile as a monitor profile is, with a pure gamma curve.

DISPLAY_P3: Display P3's primaries adapted to the D50 profile connection space, gamma 2.2 (near
the sRGB curve): the wide gamut phones shoot in. `rgb_profile` makes any other.
"""

from __future__ import annotations

import struct

D50 = (0.9642, 1.0, 0.8249)
# Display P3 red, green and blue in XYZ (D50, Bradford), as monitor profiles give them.
P3_PRIMARIES = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))


def _fixed(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))  # s15Fixed16Number


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _fixed(x) + _fixed(y) + _fixed(z)


def _curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _description(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4) + bytes(4) + bytes(2) + bytes(68)


def rgb_profile(name: str, primaries=P3_PRIMARIES, gamma: float = 2.2) -> bytes:
    """A matrix/curve RGB display profile (ICC v2) with these primaries (XYZ under D50)."""
    red, green, blue = primaries
    tags = [
        (b"desc", _description(name)),
        (b"wtpt", _xyz(*D50)),
        (b"rXYZ", _xyz(*red)),
        (b"gXYZ", _xyz(*green)),
        (b"bXYZ", _xyz(*blue)),
        (b"rTRC", _curve(gamma)),
        (b"gTRC", _curve(gamma)),
        (b"bTRC", _curve(gamma)),
        (b"cprt", b"text" + bytes(4) + b"test profile\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = [struct.pack(">I", len(tags))], b""
    for signature, payload in tags:
        payload += bytes(-len(payload) % 4)
        table.append(signature + struct.pack(">II", offset + len(data), len(payload)))
        data += payload
    body = b"".join(table) + data
    header = bytearray(128)
    struct.pack_into(">I", header, 0, 128 + len(body))
    header[8:12] = bytes([2, 0x10, 0, 0])
    header[12:24] = b"mntrRGB XYZ "
    header[36:40] = b"acsp"
    header[68:80] = b"".join(_fixed(v) for v in D50)
    return bytes(header) + body


DISPLAY_P3 = rgb_profile("Display P3 (test)")
