"""Photos the simulated reps take: small PNG pictures of a shelf, drawn from a seed (three
shelves of coloured facings), so the same visit always sends the same bytes."""

from __future__ import annotations

import hashlib
import struct
import zlib

WIDTH, HEIGHT = 96, 64
_COLOURS = ((200, 30, 40), (240, 200, 40), (30, 110, 200), (40, 160, 70), (230, 120, 30), (120, 60, 160))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def shelf_png(seed: str) -> bytes:
    """A 96×64 PNG: three shelves of facings whose colours and widths come from `seed`."""
    digest = hashlib.sha256(seed.encode()).digest()
    rows = []
    for y in range(HEIGHT):
        shelf, within = divmod(y, HEIGHT // 3)
        row = bytearray(b"\x00")  # filter type: none
        for x in range(WIDTH):
            if within >= HEIGHT // 3 - 3:
                colour = (90, 70, 50)  # the shelf board
            else:
                facing = (x // (8 + digest[shelf] % 8)) % len(digest)
                colour = _COLOURS[digest[(facing + shelf * 7) % len(digest)] % len(_COLOURS)]
            row += bytes(colour)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
