"""ICC profiles for tests, written byte by byte from the ICC v2 layout (a 128-byte header, a tag table,
the tags): a matrix/curve RGB profile as a monitor profile is, with a pure gamma curve; a CMYK input
profile (a lookup table to Lab); a grey profile (one curve).

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


def _assembled(kinds: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A profile: the 128-byte header (`kinds`: device class, colour space, connection space), the
    tag table, the tags (each padded to 4 bytes)."""
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
    header[12:24] = kinds
    header[36:40] = b"acsp"
    header[68:80] = b"".join(_fixed(v) for v in D50)
    return bytes(header) + body


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
    return _assembled(b"mntrRGB XYZ ", tags)


DISPLAY_P3 = rgb_profile("Display P3 (test)")


def _lab16(rgb: tuple[float, float, float]) -> bytes:
    """An sRGB colour (0..1) as ICC v2's 16-bit Lab (L* 100 = 0xFF00; a*, b* + 128 times 256)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    # sRGB to XYZ under D50 (Bradford-adapted, as ICC profiles give it)
    m = ((0.4360, 0.3851, 0.1431), (0.2225, 0.7169, 0.0606), (0.0139, 0.0971, 0.7141))
    xyz = [sum(m[i][j] * lin[j] for j in range(3)) / D50[i] for i in range(3)]
    f = [t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116 for t in xyz]
    lab = (116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2]))
    values = (lab[0] * 0xFF00 / 100, (lab[1] + 128) * 256, (lab[2] + 128) * 256)
    return struct.pack(">3H", *(max(0, min(0xFFFF, round(v))) for v in values))


def cmyk_profile(name: str, cyan: tuple[float, float, float] = (0.0, 0.63, 0.88)) -> bytes:
    """A CMYK input profile (ICC v2, an A2B0 lut16 of 2 points per ink): each ink subtracts its own
    colour from white, black darkens all, and pure cyan is `cyan` (sRGB, 0..1), not the naive
    (0, 1, 1), so a reader that ignores the profile is seen to."""
    clut = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    rgb = [1.0 - c, 1.0 - m, 1.0 - y]
                    if c and not (m or y):
                        rgb = list(cyan)
                    rgb = [v * (1 - 0.9 * k) for v in rgb]
                    clut += _lab16((rgb[0], rgb[1], rgb[2]))
    identity = b"".join(_fixed(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    ramp = struct.pack(">2H", 0, 0xFFFF)
    lut = b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + identity + struct.pack(">2H", 2, 2) + ramp * 4 + clut + ramp * 3
    tags = [(b"desc", _description(name)), (b"wtpt", _xyz(*D50)), (b"A2B0", lut)]
    return _assembled(b"prtrCMYKLab ", tags)


def grey_profile(name: str, gamma: float) -> bytes:
    """A grey display profile (ICC v2: its one curve, kTRC), of light = value ** gamma."""
    tags = [(b"desc", _description(name)), (b"wtpt", _xyz(*D50)), (b"kTRC", _curve(gamma))]
    return _assembled(b"mntrGRAYXYZ ", tags)
