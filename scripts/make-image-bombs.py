#!/usr/bin/env python3
"""Writes small image files that decode to huge images, for measuring clip-audit's peak memory
(README, "Limits"). Standard library only; each file is zero-filled, so it is a few megabytes.

    python3 scripts/make-image-bombs.py OUT_DIR [SIDE]

SIDE defaults to 13377: 13377² = 178,944,129 pixels, just under the default --max-image-pixels
(178,956,970). Written:

* gray16.png   16-bit grayscale PNG: 2 bytes/pixel decoded + 3 for the RGB copy
* rot90.jpg    YCbCr JPEG with EXIF orientation 6: 3 bytes/pixel decoded + 3 for the rotated copy,
               the most any image within the default limit may take (6 bytes/pixel)
* gray.jpg     grayscale JPEG: 1 byte/pixel decoded + 3 for the RGB copy
"""

import struct
import sys
import zlib
from pathlib import Path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def gray16_png(side: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    z = zlib.compressobj(9)
    row = b"\0" * (1 + 2 * side)  # filter byte 0, then zero samples
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    idat = b"".join(png_chunk(b"IDAT", data[i : i + (1 << 20)]) for i in range(0, len(data), 1 << 20))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + idat + png_chunk(b"IEND", b"")


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg(side: int, components: int, orientation: int | None) -> bytes:
    """Baseline JPEG, no subsampling, every DCT coefficient zero. Both Huffman tables have one
    1-bit code ("0": DC difference 0, and end-of-block), so each block is two zero bits."""
    out = b"\xff\xd8"
    if orientation is not None:
        tiff = b"II*\0\x08\0\0\0\x01\0" + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
        out += segment(0xE1, b"Exif\0\0" + tiff)
    out += segment(0xDB, b"\x00" + b"\x01" * 64)
    sof = struct.pack(">BHHB", 8, side, side, components)
    sof += b"".join(struct.pack(">BBB", c + 1, 0x11, 0) for c in range(components))
    out += segment(0xC0, sof)
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"  # one code of length 1, symbol 0
    out += segment(0xC4, b"\x00" + one_code)  # DC table 0
    out += segment(0xC4, b"\x10" + one_code)  # AC table 0
    sos = struct.pack(">B", components) + b"".join(struct.pack(">BB", c + 1, 0) for c in range(components))
    out += segment(0xDA, sos + b"\x00\x3f\x00")
    blocks = ((side + 7) // 8) ** 2 * components
    bits = 2 * blocks
    data = b"\0" * (bits // 8)
    if bits % 8:
        data += bytes([(1 << (8 - bits % 8)) - 1])  # pad with 1 bits
    return out + data + b"\xff\xd9"


def main() -> None:
    out = Path(sys.argv[1])
    side = int(sys.argv[2]) if len(sys.argv) > 2 else 13377
    out.mkdir(parents=True, exist_ok=True)
    (out / "gray16.png").write_bytes(gray16_png(side))
    (out / "rot90.jpg").write_bytes(jpeg(side, 3, 6))
    (out / "gray.jpg").write_bytes(jpeg(side, 1, None))
    for f in sorted(out.iterdir()):
        print(f"{f}: {f.stat().st_size} bytes, {side}x{side}")


if __name__ == "__main__":
    main()
