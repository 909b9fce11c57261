"""A Shorten encoder for the tests: written from the format description in
pyadml.data.prepare.shorten, slow and plain (one Python int per bit).

It writes what the shorten 2.x encoder writes by default (DIFF0-DIFF3 chosen per block by the
smallest residual, ``nmean`` running block means, a BLOCKSIZE command before a short last block,
ZERO for silent blocks, BITSHIFT when every sample of a block has trailing zero bits), and,
when asked, quantised LPC blocks and a leading VERBATIM section holding a WAV header (which
ffmpeg's Shorten decoder requires and the LDC's SPHERE files do not carry).
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"ajkg"
DIFF0, DIFF1, DIFF2, DIFF3, QUIT, BLOCKSIZE, BITSHIFT, QLPC, ZERO, VERBATIM = range(10)


def trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class BitWriter:
    def __init__(self):
        self.bits: list[int] = []

    def put(self, value: int, n: int) -> None:
        self.bits += [(value >> i) & 1 for i in range(n - 1, -1, -1)]

    def uvar(self, value: int, k: int) -> None:
        assert value >= 0
        self.bits += [0] * (value >> k) + [1]
        self.put(value & ((1 << k) - 1), k)

    def svar(self, value: int, k: int) -> None:
        self.uvar(2 * value if value >= 0 else -2 * value - 1, k + 1)

    def ulong(self, value: int, version: int, k: int) -> None:
        if version:
            n = value.bit_length()
            self.uvar(n, 2)
            self.uvar(value, n)
        else:
            self.uvar(value, k)

    def to_bytes(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()


def wav_header(channels: int, rate: int, frames: int) -> bytes:
    data = frames * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16) +
            b"data" + struct.pack("<I", data))


def _energy(res: np.ndarray) -> int:
    # The Rice parameter of the mean magnitude, as shorten chooses it.
    mean = float(np.abs(res).mean()) if len(res) else 0.0
    return max(int(mean).bit_length() - 1, 0) if mean >= 1 else 0


def encode(samples: np.ndarray, version: int = 2, blocksize: int = 256, nmean: int | None = None,
           lpc_order: int = 0, rate: int = 16000, wav_verbatim: bool = False,
           ftype: int = 5, skip: bytes = b"") -> bytes:
    """Shorten stream of (N, channels) integer ``samples``; ``lpc_order`` > 0 also tries a
    quantised LPC predictor of that order on each block."""
    x_all = np.asarray(samples, dtype=np.int64)
    if x_all.ndim == 1:
        x_all = x_all[:, None]
    n, channels = x_all.shape
    if nmean is None:
        nmean = 4 if version >= 2 else 0
    nwrap = max(3, lpc_order)
    lpcqoffset = 32 if version > 1 else 0
    w = BitWriter()
    w.ulong(ftype, version, 4)
    w.ulong(channels, version, 0)
    if version:
        w.ulong(blocksize, version, 8)
        w.ulong(lpc_order, version, 2)
        w.ulong(nmean, version, 0)
        w.ulong(len(skip), version, 1)
        for b in skip:
            w.put(b, 8)
    if wav_verbatim:
        head = wav_header(channels, rate, n)
        w.uvar(VERBATIM, 2)
        w.uvar(len(head), 5)
        for b in head:
            w.uvar(b, 8)
    offsets = [[0] * max(1, nmean) for _ in range(channels)]
    hist = [[0] * nwrap for _ in range(channels)]
    shift = 0
    start = 0
    while start < n:
        size = min(blocksize, n - start)
        if size != blocksize:
            w.uvar(BLOCKSIZE, 2)
            w.ulong(size, version, max(blocksize.bit_length() - 1, 0))
            blocksize = size
        block = x_all[start:start + size]
        nz = block[block != 0]
        new_shift = 0
        if len(nz):
            while new_shift < 8 and not np.any(nz & ((1 << (new_shift + 1)) - 1)):
                new_shift += 1
        else:
            new_shift = shift
        if new_shift != shift:
            w.uvar(BITSHIFT, 2)
            w.uvar(new_shift, 2)
            shift = new_shift
        for c in range(channels):
            x = [int(v) >> shift for v in block[:, c]]
            if nmean == 0:
                coffset = offsets[c][0]
            else:
                total = (nmean // 2 if version >= 2 else 0) + sum(offsets[c])
                coffset = trunc_div(total, nmean)
                if version >= 2 and shift:
                    coffset = (coffset >> (shift - 1)) >> 1
            h = hist[c]
            if not any(x):
                w.uvar(ZERO, 2)
            else:
                full = h + x
                cands = {
                    DIFF0: [v - coffset for v in x],
                    DIFF1: [full[i] - full[i - 1] for i in range(nwrap, len(full))],
                    DIFF2: [full[i] - 2 * full[i - 1] + full[i - 2] for i in range(nwrap, len(full))],
                    DIFF3: [full[i] - 3 * full[i - 1] + 3 * full[i - 2] - full[i - 3]
                            for i in range(nwrap, len(full))],
                }
                coeffs = []
                if lpc_order:
                    e = np.asarray([v - coffset for v in full], dtype=np.float64)
                    rows = np.stack([e[nwrap - 1 - j:len(e) - 1 - j] for j in range(lpc_order)], 1)
                    sol = np.linalg.lstsq(rows, e[nwrap:], rcond=None)[0]
                    coeffs = [int(round(c_ * 32)) for c_ in sol]
                    prev = [v - coffset for v in h[nwrap - lpc_order:]]
                    res = []
                    for v in x:
                        ev = v - coffset
                        acc = lpcqoffset + sum(coeffs[j] * prev[-1 - j] for j in range(lpc_order))
                        res.append(ev - (acc >> 5))
                        prev = prev[1:] + [ev]
                    cands[QLPC] = res
                cmd = min(cands, key=lambda k_: (sum(abs(r) for r in cands[k_]), k_))
                res = cands[cmd]
                k = _energy(np.asarray(res))
                w.uvar(cmd, 2)
                w.uvar(k + (1 if version == 0 else 0), 3)
                if cmd == QLPC:
                    w.uvar(lpc_order, 2)
                    for c_ in coeffs:
                        w.svar(c_, 5)
                for r in res:
                    w.svar(r, k)
                if cmd == QLPC:
                    # The decoders move the history by the mean in place and leave it so; it
                    # shows when a block is shorter than the history.
                    h = h[:nwrap - lpc_order] + [v - coffset for v in h[nwrap - lpc_order:]]
            if nmean > 0:
                total = (size // 2 if version >= 2 else 0) + sum(x)
                mean = trunc_div(total, size)
                offsets[c] = offsets[c][1:] + [mean << shift if version >= 2 else mean]
            hist[c] = (h + x)[-nwrap:]
        start += size
    w.uvar(QUIT, 2)
    return MAGIC + bytes([version]) + w.to_bytes()


def sphere(stream: bytes, frames: int, channels: int = 1, rate: int = 16000,
           coding: str = "pcm,embedded-shorten-v2.00") -> bytes:
    """The stream under a 1024-byte NIST SPHERE header, as the LDC's WSJ files are."""
    header = (f"NIST_1A\n   1024\nsample_count -i {frames}\nsample_rate -i {rate}\n"
              f"channel_count -i {channels}\nsample_n_bytes -i 2\nsample_byte_format -s2 01\n"
              f"sample_coding -s{len(coding)} {coding}\nend_head\n")
    return header.encode().ljust(1024, b" ") + stream
