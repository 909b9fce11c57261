"""NIST SPHERE headers, and Shorten-compressed SPHERE (the LDC's WSJ) decoded without sph2pipe.

LDC corpora such as WSJ ship their audio as SPHERE files whose samples are a Shorten stream
(``sample_coding -s26 pcm,embedded-shorten-v2.00``): libsndfile cannot read them, and Kaldi
reads them through ``sph2pipe``, which neither Debian nor PyPI packages. This module decodes
such files itself, so that stage 1 reads an LDC tree on a machine without Kaldi's tools
(``python -m pyadml.bin.sph2wav``, the command the manifests then name), and ``detect``,
``score_pairs`` and ``score_clips`` read such files as they read any other. The command's path
(``shorten_sphere_pcm16``) imports nothing beyond the standard library: it runs once per
recording in stage 4, where numpy's import would double its time.

The Shorten stream (T. Robinson, "SHORTEN: Simple lossless and near-lossless waveform
compression", CUED/F-INFENG/TR.156, 1994; versions 0-3) is a bit stream, most significant bit
first, of Rice codes: ``uvar(k)`` is a unary count q (q zeros, then a one) followed by k bits b,
the value q * 2^k + b; ``svar(k)`` is ``uvar(k + 1)`` folded to a signed value (even u -> u/2, odd
u -> -(u+1)/2); ``ulong`` is ``uvar(uvar(2))`` (version 0: a fixed k). After the magic ``ajkg``
and a version byte come the sample type, the channel count and (version > 0) the block size, the
maximum LPC order, the number of block means and a count of bytes to skip. Then commands
(``uvar(2)``), for each channel in turn: DIFF0-3 (fixed polynomial predictors of order 0-3),
QLPC (quantised LPC with its coefficients), ZERO (a silent block), BLOCKSIZE, BITSHIFT,
VERBATIM (bytes to pass over, e.g. a copied file header) and QUIT. Each audio block gives the
residual's Rice parameter (``uvar(3)``) and one ``svar`` per sample; DIFF0 and QLPC predict from
the running mean of the last ``nmean`` blocks. The decoding rules below follow that report and
the shorten 2.x sources' behaviour as other decoders reproduce it (integer division truncating
toward zero, version 2's rounded means, the bit shift applied after the means).
"""

from __future__ import annotations

import os
import sys
from array import array
from itertools import accumulate
from pathlib import Path

MAGIC = b"ajkg"
FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QUIT, FN_BLOCKSIZE, FN_BITSHIFT, FN_QLPC, FN_ZERO, \
    FN_VERBATIM = range(10)
TYPE_S8, TYPE_U8, TYPE_S16HL, TYPE_U16HL, TYPE_S16LH, TYPE_U16LH = range(1, 7)
FNSIZE, ENERGYSIZE, LPCQSIZE, BITSHIFTSIZE, ULONGSIZE = 2, 3, 2, 2, 2
TYPESIZE, CHANSIZE, NSKIPSIZE, VERBATIM_CKSIZE_SIZE, VERBATIM_BYTE_SIZE = 4, 0, 1, 5, 8
LPCQUANT = 5
NWRAP = 3
DEFAULT_BLOCK_SIZE = 256
MAX_BLOCK_SIZE = 65535
MAX_CHANNELS = 8
# Sample types the decoder writes: the 16-bit ones (either byte order: the values are the same)
# and 8-bit.
_TYPES = {TYPE_S8: "s8", TYPE_U8: "u8", TYPE_S16HL: "s16", TYPE_S16LH: "s16",
          TYPE_U16HL: "u16", TYPE_U16LH: "u16"}


class SphereError(ValueError):
    """A SPHERE file or Shorten stream that cannot be read; the message names the file and why."""


def read_sphere_header(path: str | os.PathLike) -> dict[str, int | float | str]:
    """The fields of a NIST SPHERE header (``name -i 1``, ``-r 1.0``, ``-sN text``)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(1024)
        if not head.startswith(b"NIST_1A"):
            raise SphereError(f"{path}: not a NIST SPHERE file (no NIST_1A magic)")
        lines = head.split(b"\n")
        try:
            size = int(lines[1])
        except (IndexError, ValueError):
            raise SphereError(f"{path}: SPHERE header size is not a number") from None
        if size > len(head):
            head += f.read(size - len(head))
    fields: dict[str, int | float | str] = {}
    for raw in head[:size].split(b"\n")[2:]:
        line = raw.decode("ascii", "replace").strip()
        if line == "end_head":
            return fields
        parts = line.split(maxsplit=2)
        if len(parts) < 3:
            continue
        name, kind, value = parts
        try:
            fields[name] = int(value) if kind == "-i" else float(value) if kind == "-r" else value
        except ValueError:
            raise SphereError(f"{path}: SPHERE header field {name} has a bad value {value!r}") from None
    raise SphereError(f"{path}: SPHERE header has no end_head within {size} bytes")


def is_shorten_sphere(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a SPHERE file whose samples are a Shorten stream."""
    try:
        with open(path, "rb") as f:
            if f.read(7) != b"NIST_1A":
                return False
        return "shorten" in str(read_sphere_header(path).get("sample_coding", ""))
    except (OSError, SphereError):
        return False


def _trunc_div(a: int, b: int) -> int:
    # C's integer division, which Shorten's means use (Python's // floors).
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class _Bits:
    """Most-significant-bit-first reader of Rice codes, with a small integer cache."""

    def __init__(self, data: bytes, offset: int = 0):
        self.data = data
        self.pos = offset      # next byte to load
        self.cache = 0         # the unread bits, ``n`` of them
        self.n = 0

    def _fill(self) -> None:
        chunk = self.data[self.pos:self.pos + 8]
        if not chunk:
            raise SphereError(f"the stream ends in the middle of a code (byte {self.pos})")
        self.pos += len(chunk)
        self.cache = (self.cache << (8 * len(chunk))) | int.from_bytes(chunk, "big")
        self.n += 8 * len(chunk)

    def uvar(self, k: int) -> int:
        q = 0
        while True:
            if not self.cache:
                q += self.n
                self.n = 0
                self._fill()
                continue
            lead = self.n - self.cache.bit_length()
            q += lead
            self.n -= lead + 1
            self.cache &= (1 << self.n) - 1
            break
        if not k:
            return q
        while self.n < k:
            self._fill()
        self.n -= k
        low = self.cache >> self.n
        self.cache &= (1 << self.n) - 1
        return (q << k) | low

    def skip(self, count: int) -> None:
        while self.n < count:
            self._fill()
        self.n -= count
        self.cache &= (1 << self.n) - 1

    def svar(self, k: int) -> int:
        u = self.uvar(k + 1)
        return ~(u >> 1) if u & 1 else u >> 1

    def svars(self, k: int, count: int) -> list[int]:
        """``count`` svar(k) codes: the residuals of one block (the decoder's inner loop)."""
        out = [0] * count
        data, pos, cache, n = self.data, self.pos, self.cache, self.n
        k1 = k + 1
        for i in range(count):
            q = 0
            while not cache:
                q += n
                chunk = data[pos:pos + 8]
                if not chunk:
                    raise SphereError(f"the stream ends in the middle of a block (byte {pos})")
                pos += len(chunk)
                cache = int.from_bytes(chunk, "big")
                n = 8 * len(chunk)
            lead = n - cache.bit_length()
            q += lead
            n -= lead + 1
            cache &= (1 << n) - 1
            while n < k1:
                chunk = data[pos:pos + 8]
                if not chunk:
                    raise SphereError(f"the stream ends in the middle of a block (byte {pos})")
                pos += len(chunk)
                cache = (cache << (8 * len(chunk))) | int.from_bytes(chunk, "big")
                n += 8 * len(chunk)
            n -= k1
            u = (q << k1) | (cache >> n)
            cache &= (1 << n) - 1
            out[i] = ~(u >> 1) if u & 1 else u >> 1
        self.pos, self.cache, self.n = pos, cache, n
        return out


def _fixed_prediction(order: int, res: list[int], hist: list[int], coffset: int) -> list[int]:
    """Samples of a DIFF<order> block: the residuals summed ``order`` times, each sum starting
    from the matching difference of the previous samples ``hist`` (oldest first)."""
    if order == 0:
        return [r + coffset for r in res]
    # Differences of the history: level j holds the j-th difference of its last samples.
    levels = [hist]
    for _ in range(order - 1):
        last = levels[-1]
        levels.append([b - a for a, b in zip(last, last[1:])])
    x = res
    for j in range(order - 1, -1, -1):
        x = list(accumulate(x, initial=levels[j][-1]))[1:]
    return x


def decode_shorten(data: bytes, offset: int = 0, where: str = "shorten stream"):
    """The samples of the Shorten stream at ``data[offset:]``: an (N, channels) int64 array of
    the coded integer values, and the sample type ("s16", "u16", "s8" or "u8")."""
    import numpy as np

    channels, kind = _decode(data, offset, where)
    return np.array(channels, dtype=np.int64).T.reshape(-1, len(channels)), kind


def _decode(data: bytes, offset: int, where: str) -> tuple[list[list[int]], str]:
    """decode_shorten's work on Python lists (one per channel): the command line needs no numpy."""
    if data[offset:offset + 4] != MAGIC:
        raise SphereError(f"{where}: no Shorten magic 'ajkg' at byte {offset} "
                          f"(found {data[offset:offset + 4]!r})")
    if len(data) < offset + 5:
        raise SphereError(f"{where}: the stream ends after its magic")
    version = data[offset + 4]
    if version > 3:
        raise SphereError(f"{where}: Shorten version {version}; versions 0-3 are known")
    bits = _Bits(data, offset + 5)

    def ulong(k: int) -> int:
        return bits.uvar(bits.uvar(ULONGSIZE) if version else k)

    try:
        ftype = ulong(TYPESIZE)
        channels = ulong(CHANSIZE)
        blocksize, maxnlpc, nmean = DEFAULT_BLOCK_SIZE, 0, (4 if version >= 2 else 0)
        if version:
            blocksize = ulong(DEFAULT_BLOCK_SIZE.bit_length() - 1)
            maxnlpc = ulong(LPCQSIZE)
            nmean = ulong(0)
            for _ in range(ulong(NSKIPSIZE)):
                bits.skip(8)  # plain bytes, not Rice codes
    except SphereError as e:
        raise SphereError(f"{where}: header: {e}") from None
    if ftype not in _TYPES:
        raise SphereError(f"{where}: Shorten sample type {ftype} is not supported "
                          f"(known: 1-6, 8- and 16-bit linear PCM)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise SphereError(f"{where}: {channels} channels; expected 1-{MAX_CHANNELS}")
    if not 1 <= blocksize <= MAX_BLOCK_SIZE:
        raise SphereError(f"{where}: block size {blocksize}; expected 1-{MAX_BLOCK_SIZE}")
    kind = _TYPES[ftype]
    nwrap = max(NWRAP, maxnlpc)
    lpcqoffset = (1 << LPCQUANT) if version > 1 else 0
    mean0 = 0x80 if kind == "u8" else 0x8000 if kind == "u16" else 0
    offsets = [[mean0] * max(1, nmean) for _ in range(channels)]
    hist = [[0] * nwrap for _ in range(channels)]
    out: list[list[int]] = [[] for _ in range(channels)]
    bitshift, chan = 0, 0
    try:
        while True:
            cmd = bits.uvar(FNSIZE)
            if cmd == FN_QUIT:
                break
            if cmd == FN_VERBATIM:
                for _ in range(bits.uvar(VERBATIM_CKSIZE_SIZE)):
                    bits.uvar(VERBATIM_BYTE_SIZE)
            elif cmd == FN_BITSHIFT:
                bitshift = bits.uvar(BITSHIFTSIZE)
                if bitshift > 31:
                    raise SphereError(f"bit shift {bitshift}; expected 0-31")
            elif cmd == FN_BLOCKSIZE:
                new = ulong(max(int(blocksize).bit_length() - 1, 0))
                if not 1 <= new <= MAX_BLOCK_SIZE:
                    raise SphereError(f"block size {new}; expected 1-{MAX_BLOCK_SIZE}")
                blocksize = new
            elif cmd in (FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QLPC, FN_ZERO):
                out[chan] += _audio_block(bits, cmd, version, blocksize, nmean, bitshift,
                                          lpcqoffset, offsets[chan], hist[chan], nwrap)
                chan = (chan + 1) % channels
            else:
                raise SphereError(f"unknown command {cmd} at byte {bits.pos}")
    except SphereError as e:
        raise SphereError(f"{where}: {e}") from None
    if chan:
        raise SphereError(f"{where}: the stream stops after channel {chan - 1} of a block")
    return out, kind


def _audio_block(bits: _Bits, cmd: int, version: int, blocksize: int, nmean: int, bitshift: int,
                 lpcqoffset: int, offset: list[int], hist: list[int], nwrap: int) -> list[int]:
    """One channel's block: decode, update the running means and the history (in place), and
    return the samples with the bit shift applied."""
    k = 0
    if cmd != FN_ZERO:
        k = bits.uvar(ENERGYSIZE)
        if version == 0:
            k -= 1  # version 0 coded the parameter of svar, not of its uvar
            if k < 0:
                raise SphereError("version-0 residual parameter below 0")
    if nmean == 0:
        coffset = offset[0]
    else:
        total = (nmean // 2 if version >= 2 else 0) + sum(offset)
        coffset = _trunc_div(total, nmean)
        if version >= 2 and bitshift:
            coffset = (coffset >> (bitshift - 1)) >> 1
    if cmd == FN_ZERO:
        s = [0] * blocksize
    elif cmd == FN_QLPC:
        order = bits.uvar(LPCQSIZE)
        if order > nwrap:
            raise SphereError(f"LPC order {order} above the header's maximum {nwrap}")
        coeffs = [bits.svar(LPCQUANT) for _ in range(order)]
        res = bits.svars(k, blocksize)
        # The history is moved by the mean in place, and stays so: shorten's and ffmpeg's
        # decoders do this, which matters when a block is shorter than the history.
        for i in range(nwrap - order, nwrap):
            hist[i] -= coffset
        prev = hist[nwrap - order:]
        e = []
        for r in res:
            acc = lpcqoffset
            for j in range(order):
                acc += coeffs[j] * prev[order - 1 - j]
            v = r + (acc >> LPCQUANT)
            e.append(v)
            if order:
                prev.append(v)
                prev.pop(0)
        s = [v + coffset for v in e]
    else:
        s = _fixed_prediction(cmd, bits.svars(k, blocksize), hist, coffset)
    if nmean > 0:
        total = (blocksize // 2 if version >= 2 else 0) + sum(s)
        offset.pop(0)
        mean = _trunc_div(total, blocksize)
        offset.append(mean << bitshift if version >= 2 else mean)
    hist[:] = (hist + s)[-nwrap:]
    return [v << bitshift for v in s] if bitshift else s


def _shorten_sphere_samples(path: str | os.PathLike) -> tuple[list[list[int]], str, int]:
    """(per-channel sample lists, sample type, rate) of an embedded-Shorten SPHERE file,
    checked against the header's sample_count and channel_count."""
    path = Path(path)
    hdr = read_sphere_header(path)
    coding = str(hdr.get("sample_coding", ""))
    if "shorten" not in coding:
        raise SphereError(f"{path}: sample_coding {coding!r} is not embedded Shorten")
    if "ulaw" in coding or "alaw" in coding:
        raise SphereError(f"{path}: sample_coding {coding!r}: only linear PCM under Shorten "
                          f"is supported")
    data = path.read_bytes()
    channels, kind = _decode(data, int(data.split(b"\n", 2)[1]), str(path))
    n_ch = int(hdr.get("channel_count", len(channels)))
    if len(channels) != n_ch:
        raise SphereError(f"{path}: the stream has {len(channels)} channels, the header "
                          f"channel_count {n_ch}")
    count = hdr.get("sample_count")
    if count is not None:
        if len(channels[0]) < int(count):
            raise SphereError(f"{path}: the stream holds {len(channels[0])} samples per "
                              f"channel, the header's sample_count {count}: truncated file?")
        channels = [c[:int(count)] for c in channels]
    rate = int(hdr.get("sample_rate", 0))
    if rate <= 0:
        raise SphereError(f"{path}: SPHERE header has no sample_rate")
    return channels, kind, rate


def _to_int16(v: int, kind: str) -> int:
    if kind == "s16":
        return -32768 if v < -32768 else 32767 if v > 32767 else v
    if kind == "u16":
        return (0 if v < 0 else 65535 if v > 65535 else v) - 32768
    if kind == "u8":
        return ((0 if v < 0 else 255 if v > 255 else v) - 128) << 8
    return (-128 if v < -128 else 127 if v > 127 else v) << 8


def shorten_sphere_pcm16(path: str | os.PathLike, channel: int | None = None
                         ) -> tuple[bytes, int, int]:
    """(interleaved little-endian 16-bit PCM, rate, channels) of an embedded-Shorten SPHERE
    file, or of its channel ``channel`` (0-based) alone; without numpy."""
    channels, kind, rate = _shorten_sphere_samples(path)
    if channel is not None:
        if not 0 <= channel < len(channels):
            raise SphereError(f"{path}: channel {channel + 1} asked, the file has "
                              f"{len(channels)} channel(s)")
        channels = [channels[channel]]
    pcm = array("h", (_to_int16(v, kind) for frame in zip(*channels) for v in frame))
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm.tobytes(), rate, len(channels)


def read_shorten_sphere(path: str | os.PathLike):
    """(samples, rate) of an embedded-Shorten SPHERE file: int16 (N, channels)."""
    import numpy as np

    pcm, rate, n_ch = shorten_sphere_pcm16(path)
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16).reshape(-1, n_ch), rate


def read_sphere(path: str | os.PathLike):
    """(int16 samples (N, channels), rate) of a SPHERE file, Shorten-compressed or not."""
    if is_shorten_sphere(path):
        return read_shorten_sphere(path)
    import soundfile as sf

    read_sphere_header(path)  # a clear error for a file that is not SPHERE at all
    try:
        samples, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as e:  # libsndfile raises several types
        raise SphereError(f"{path}: not readable SPHERE audio ({e})") from None
    return samples, int(rate)
