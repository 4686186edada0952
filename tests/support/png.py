"""PNG pictures read and written with the standard library (zlib), for checking what a
browser drew: 8-bit RGB or RGBA, non-interlaced, which is what Chromium's screenshots are.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Picture:
    width: int
    height: int
    channels: int  # 3 (RGB) or 4 (RGBA)
    rows: list[bytes]  # unfiltered scanlines

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = x * self.channels
        r, g, b = self.rows[y][i : i + 3]
        return r, g, b

    def count(self, colour: str, *, tolerance: int = 12, box: tuple[int, int, int, int] | None = None) -> int:
        """Pixels within ``tolerance`` (per channel) of ``colour`` (``#rrggbb``), in
        ``box`` (left, top, right, bottom) or the whole picture."""
        want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        left, top, right, bottom = box or (0, 0, self.width, self.height)
        n = 0
        for y in range(top, bottom):
            row = self.rows[y]
            for x in range(left, right):
                i = x * self.channels
                if (
                    abs(row[i] - want[0]) <= tolerance
                    and abs(row[i + 1] - want[1]) <= tolerance
                    and abs(row[i + 2] - want[2]) <= tolerance
                ):
                    n += 1
        return n

    def crop(self, left: int, top: int, right: int, bottom: int) -> Picture:
        c = self.channels
        return Picture(
            width=right - left,
            height=bottom - top,
            channels=c,
            rows=[row[left * c : right * c] for row in self.rows[top:bottom]],
        )


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind: int, line: bytearray, prev: bytes, bpp: int) -> None:
    if kind == 0:
        return
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + a) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + b) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
        elif kind == 4:
            line[i] = (line[i] + _paeth(a, b, c)) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter {kind}")


def read_png(path: Path) -> Picture:
    data = path.read_bytes()
    if not data.startswith(SIGNATURE):
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = len(SIGNATURE), bytearray(), b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in (2, 6) or interlace:
        raise ValueError(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs are read here")
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows, prev = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, prev, channels)
        prev = bytes(line)
        rows.append(prev)
    return Picture(width=width, height=height, channels=channels, rows=rows)


def write_png(picture: Picture, path: Path) -> Path:
    """An RGB PNG (alpha dropped), each row with the Up filter: small for screenshots."""
    rgb = [
        row if picture.channels == 3 else bytes(b for i, b in enumerate(row) if i % 4 != 3)
        for row in picture.rows
    ]
    raw, prev = bytearray(), bytes(len(rgb[0]) if rgb else 0)
    for row in rgb:
        raw += b"\x02" + bytes((row[i] - prev[i]) & 0xFF for i in range(len(row)))
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", picture.width, picture.height, 8, 2, 0, 0, 0)
    path.write_bytes(
        SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )
    return path
