"""Image safety: detect the real format of uploaded data and refuse the dangerous ones.

A disk image is not just bytes: QEMU interprets headers, and some of them make it read other
files of the host (a qcow2 backing file or external data file, a VMDK extent, a differencing
VHDX's parent). A user who uploads such an image and boots it can read the compute node's
files. So every upload is inspected *as it streams* (nothing is buffered beyond the first
MiB and a 1.5 KiB tail), in pure Python, without running ``qemu-img``:

- ``feed(chunk)`` with the bytes in order; once the first MiB is in, the format is decided
  and obvious problems raise :class:`ImageFormatError` at once, so a bad 10 GiB upload stops
  after 1 MiB;
- ``finish()`` at the end does the checks that need the whole stream (short files, the VMDK
  footer, a VHDX metadata region further in) and returns an :class:`Inspection`.

What is refused (the message says which and why):

- a qcow2 with a backing file, an external data file, unknown incompatible features, or a
  version other than 2/3; QED and LUKS data; VMDKs that are descriptor files, delta disks
  (a parent), of a type other than ``monolithicSparse``/``streamOptimized``, or whose extents
  name paths; a differencing VHDX (parent locator) or VDI (undo/diff);
- a header that is truncated (the magic is there, the rest is not);
- data whose detected format differs from the declared ``disk_format``. ``raw`` means "no
  format": data that QEMU would interpret (qcow2, vmdk, vhd, vhdx, vdi) declared as ``raw``
  is refused (stricter than Glance, which accepts it with a warning), ISO data and partition
  tables are fine as ``raw``. ``ami``/``ari``/``aki``/``ploop`` cannot be inspected: they
  accept anything not recognized as another format.

Only ``container_format: bare`` images are matched against their ``disk_format`` (as in
Glance: other containers wrap the disk); the safety checks apply to every upload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

HEAD_BYTES: Final = 1 << 20
TAIL_BYTES: Final = 1536

DISK_FORMATS: Final = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi",
                       "iso", "ploop")
CONTAINER_FORMATS: Final = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
# formats QEMU interprets: declaring such data "raw" is a mismatch
INTERPRETED: Final = frozenset({"qcow2", "vhd", "vhdx", "vmdk", "vdi"})
UNINSPECTABLE: Final = frozenset({"ami", "ari", "aki", "ploop"})


class ImageFormatError(ValueError):
    """The data is unsafe, or does not match its declared format. ``str()`` is the message
    for the user."""


@dataclass
class Inspection:
    format: str  # detected: "raw", "qcow2", "iso", ...
    virtual_size: int | None
    size: int


@dataclass
class _Region:
    offset: int
    length: int
    data: bytearray = field(default_factory=bytearray)

    @property
    def complete(self) -> bool:
        return len(self.data) >= self.length

    def take(self, pos: int, chunk: bytes | memoryview) -> None:
        start = max(self.offset + len(self.data), pos)
        end = min(self.offset + self.length, pos + len(chunk))
        if start < end and start == self.offset + len(self.data):
            self.data += chunk[start - pos:end - pos]


def _guid(raw: bytes | bytearray) -> str:
    a, b, c, *rest = struct.unpack("<IHH8B", raw)
    tail = "".join(f"{x:02X}" for x in rest)
    return f"{a:08X}-{b:04X}-{c:04X}-{tail[:4]}-{tail[4:]}"


_VHDX_METAREGION: Final = "8B7CA206-4790-4B9A-B8FE-575F050F886E"
_VHDX_VIRTUAL_DISK_SIZE: Final = "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
_VHDX_PARENT_LOCATOR: Final = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
_VMDK_GD_AT_END: Final = 0xFFFFFFFFFFFFFFFF
_QCOW2_DATA_FILE_BIT: Final = 1 << 2
_QCOW2_KNOWN_INCOMPATIBLE: Final = (1 << 5) - 1  # dirty, corrupt, data file, compression, ext-L2
_QCOW2_EXT_DATA_FILE: Final = 0x44415441


class FormatInspector:
    """Streaming inspection of one upload. Not thread-safe; feed it from one task."""

    def __init__(self, disk_format: str | None, container_format: str | None = "bare") -> None:
        self.declared = disk_format
        self.match_required = container_format in (None, "bare")
        self.head = bytearray()
        self._tail_chunks: list[bytes | memoryview] = []  # the last chunks, >= TAIL_BYTES
        self._tail_len = 0
        self.pos = 0
        self.regions: dict[str, _Region] = {}
        self.detected: str | None = None  # decided once the head is complete
        self._vmdk_footer = False

    # -- streaming ----------------------------------------------------------------------

    def feed(self, chunk: bytes | memoryview) -> None:
        n = len(chunk)
        if not n:
            return
        if self.detected is not None and not self._following:
            # past the head with nothing more to capture: only the tail matters
            self._tail_chunks.append(chunk)
            self._tail_len += n
            while self._tail_len - len(self._tail_chunks[0]) >= TAIL_BYTES:
                self._tail_len -= len(self._tail_chunks.pop(0))
            self.pos += n
            return
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[:HEAD_BYTES - len(self.head)]
            if self.detected is None and len(self.head) >= HEAD_BYTES:
                self._decide(final=False)  # may add regions, which take from this chunk too
        while True:  # a completed region may ask for another one, in this same chunk
            for region in list(self.regions.values()):
                if not region.complete:
                    region.take(self.pos, chunk)
            before = len(self.regions)
            if self.detected == "vhdx":
                self._vhdx_follow()
            if len(self.regions) == before:
                break
        self._tail_chunks.append(chunk)
        self._tail_len += n
        while self._tail_len - len(self._tail_chunks[0]) >= TAIL_BYTES:
            self._tail_len -= len(self._tail_chunks.pop(0))
        self.pos += n

    def finish(self) -> Inspection:
        if self.detected is None:
            self._decide(final=True)
        fmt = self.detected or "raw"
        if fmt == "vmdk" and self._vmdk_footer:
            self._check_vmdk_footer()
        if fmt == "vhdx":
            self._vhdx_follow()
        virtual = self._virtual_size(fmt)
        self._check_match(fmt)
        if self.declared and self.declared != fmt:  # as Glance: raw's size, else unknown
            virtual = self.pos if self.declared == "raw" else None
        return Inspection(format=fmt, virtual_size=virtual, size=self.pos)

    @property
    def tail(self) -> bytes:
        """The last TAIL_BYTES of the stream (fewer if it is shorter)."""
        return b"".join(bytes(c) for c in self._tail_chunks)[-TAIL_BYTES:]

    @property
    def _following(self) -> bool:
        """Still capturing something past the head (a VHDX metadata region)."""
        return any(not r.complete for r in self.regions.values()) or (
            self.detected == "vhdx" and "vhdx_vds" not in self.regions)

    # -- decision -----------------------------------------------------------------------

    def _decide(self, final: bool) -> None:
        found = self._candidates()
        if len(found) > 1:
            raise ImageFormatError(
                f"Image data matches several formats ({', '.join(sorted(found))}); refusing "
                "ambiguous data")
        fmt = found[0] if found else "raw"
        self.detected = fmt
        if fmt == "qcow2":
            self._check_qcow2()
        elif fmt == "vmdk":
            self._check_vmdk()
        elif fmt == "vhdx":
            self._start_vhdx()
        elif fmt == "vdi":
            self._check_vdi()
        elif fmt in ("qed", "luks"):
            raise ImageFormatError(f"Image data is in the {fmt} format, which is not "
                                   "supported (unsafe or encrypted)")
        if not final:
            self._check_match(fmt)

    def _candidates(self) -> list[str]:
        h = self.head
        found: list[str] = []
        if h[:4] == b"QFI\xfb":
            found.append("qcow2")
        if h[:4] == b"QED\x00":
            found.append("qed")
        if h[:6] == b"LUKS\xba\xbe":
            found.append("luks")
        if h[:8] == b"conectix":
            found.append("vhd")
        if h[:8] == b"vhdxfile":
            found.append("vhdx")
        if h[:4] == b"KDMV" or self._looks_like_vmdk_descriptor():
            found.append("vmdk")
        if len(h) >= 0x44 and struct.unpack("<I", h[0x40:0x44])[0] == 0xBEDA107F:
            found.append("vdi")
        if len(h) >= 0x8006 and bytes(h[0x8001:0x8006]) in (b"CD001", b"NSR02", b"NSR03"):
            found.append("iso")
        return found

    def _looks_like_vmdk_descriptor(self) -> bool:
        sample = bytes(self.head[:4096])
        if b"\x00" in sample:
            return False
        try:
            text = sample.decode("ascii").lower()
        except UnicodeDecodeError:
            return False
        return "# disk descriptorfile" in text or ("createtype=" in text and "rw " in text)

    def _check_match(self, fmt: str) -> None:
        if not self.match_required or not self.declared:
            return
        declared = self.declared
        if declared == fmt:
            return
        if declared == "raw" and fmt not in INTERPRETED:
            return
        if declared in UNINSPECTABLE and fmt in ("raw", "iso"):
            return
        raise ImageFormatError(
            f"Image disk_format {declared} does not match the uploaded data, which is {fmt}")

    # -- qcow2 --------------------------------------------------------------------------

    def _need(self, n: int, fmt: str) -> bytearray:
        if len(self.head) < n:
            raise ImageFormatError(f"Image data has a truncated {fmt} header "
                                   f"({len(self.head)} of {n} bytes)")
        return self.head

    def _check_qcow2(self) -> None:
        h = self._need(72, "qcow2")
        version, backing_offset, backing_size = struct.unpack(">IQI", h[4:20])
        if version not in (2, 3):
            raise ImageFormatError(f"qcow2 version {version} is not supported")
        if backing_offset != 0 or backing_size != 0:
            raise ImageFormatError("qcow2 image has a backing file; images that refer to "
                                   "other files are not allowed")
        ext_start = 72
        if version == 3:
            h = self._need(104, "qcow2")
            (incompatible,) = struct.unpack(">Q", h[72:80])
            if incompatible & _QCOW2_DATA_FILE_BIT:
                raise ImageFormatError("qcow2 image has an external data file; images that "
                                       "refer to other files are not allowed")
            if incompatible & ~_QCOW2_KNOWN_INCOMPATIBLE:
                raise ImageFormatError("qcow2 image uses unknown incompatible features")
            (ext_start,) = struct.unpack(">I", h[100:104])
        self._qcow2_extensions(ext_start)

    def _qcow2_extensions(self, offset: int) -> None:
        h = self.head
        for _ in range(64):
            if offset + 8 > len(h):
                return
            kind, length = struct.unpack(">II", h[offset:offset + 8])
            if kind == 0:
                return
            if kind == _QCOW2_EXT_DATA_FILE:
                raise ImageFormatError("qcow2 image names an external data file; images that "
                                       "refer to other files are not allowed")
            offset += 8 + ((length + 7) & ~7)

    # -- vmdk ---------------------------------------------------------------------------

    def _check_vmdk(self) -> None:
        if self.head[:4] != b"KDMV":
            raise ImageFormatError("VMDK descriptor files (data in separate extent files) "
                                   "are not allowed; upload a monolithicSparse or "
                                   "streamOptimized VMDK")
        h = self._need(64, "vmdk")
        (_magic, version, _flags, _capacity, _grain, desc_sec, desc_num, _gtes, _rgd,
         gd_offset) = struct.unpack("<4sIIQQQQIQQ", h[:64])
        if version not in (1, 2, 3):
            raise ImageFormatError(f"VMDK version {version} is not supported")
        if desc_sec != 1:
            raise ImageFormatError("VMDK descriptor is not where it belongs (sector 1)")
        desc = self._need(512 + min(desc_num * 512, HEAD_BYTES - 512), "vmdk")
        text = bytes(desc[512:512 + desc_num * 512]).split(b"\x00", 1)[0]
        self._check_vmdk_descriptor(text)
        self._vmdk_footer = gd_offset == _VMDK_GD_AT_END

    @staticmethod
    def _check_vmdk_descriptor(raw: bytes) -> None:
        try:
            text = raw.decode("ascii").lower()
        except UnicodeDecodeError as exc:
            raise ImageFormatError("VMDK descriptor is not ASCII text") from exc
        kind = ""
        extents = 0
        for line in (x.strip() for x in text.split("\n")):
            if not line or line.startswith("#") or line.startswith("ddb"):
                continue
            if line.split(" ", 1)[0] in ("rw", "rdonly", "noaccess"):
                if "/" in line or "\\" in line:
                    raise ImageFormatError("VMDK extent names a path; not allowed")
                extents += 1
            elif "=" in line and " " not in line.split("=", 1)[0]:
                key, value = (x.strip().strip('"') for x in line.split("=", 1))
                if key == "createtype":
                    kind = value
                elif key == "parentfilenamehint" or (key == "parentcid" and
                                                     value != "ffffffff"):
                    raise ImageFormatError("VMDK image is a delta disk (it has a parent); "
                                           "images that refer to other files are not allowed")
            else:
                raise ImageFormatError("VMDK descriptor has lines that are not understood")
        if kind not in ("monolithicsparse", "streamoptimized"):
            raise ImageFormatError(f"VMDK type {kind or 'unknown'!r} is not allowed (only "
                                   "monolithicSparse and streamOptimized)")
        if not extents:
            raise ImageFormatError("VMDK descriptor names no extents")

    def _check_vmdk_footer(self) -> None:
        tail = self.tail
        if len(tail) < TAIL_BYTES:
            raise ImageFormatError("VMDK stream is truncated (no footer)")
        marker_size, marker_type = struct.unpack("<II", tail[8:16])
        footer = tail[512:1024]
        eos_val, eos_size, eos_type = struct.unpack("<QII", tail[1024:1040])
        if marker_size != 0 or marker_type != 3 or footer[:4] != b"KDMV":
            raise ImageFormatError("VMDK footer marker is invalid")
        (f_gd,) = struct.unpack("<Q", footer[56:64])
        if f_gd == _VMDK_GD_AT_END:
            raise ImageFormatError("VMDK footer points to another footer")
        head_desc = struct.unpack("<QQ", self.head[28:44])
        if struct.unpack("<QQ", footer[28:44]) != head_desc:
            raise ImageFormatError("VMDK footer names another descriptor than the header")
        if (eos_val, eos_size, eos_type) != (0, 0, 0):
            raise ImageFormatError("VMDK end-of-stream marker is invalid")

    # -- vhdx ---------------------------------------------------------------------------

    def _start_vhdx(self) -> None:
        h = self._need(0x30000 + 16, "vhdx")
        sig, _crc, count, _res = struct.unpack("<4sIII", h[0x30000:0x30010])
        if sig != b"regi":
            raise ImageFormatError("VHDX region table signature not found")
        if count >= 2048:
            raise ImageFormatError("VHDX region table is too large")
        for i in range(count):
            start = 0x30000 + 16 + 32 * i
            entry = self._need(start + 32, "vhdx")[start:start + 32]
            if _guid(entry[:16]) == _VHDX_METAREGION:
                (offset,) = struct.unpack("<Q", entry[16:24])
                self._add_region("vhdx_meta", offset, 32 * 2048)
                return
        raise ImageFormatError("VHDX metadata region not found")

    def _add_region(self, name: str, offset: int, length: int) -> None:
        region = _Region(offset, length)
        # what already went by is in the head (or lost: then finish() reports truncation)
        if offset < len(self.head):
            region.data += self.head[offset:offset + length]
        self.regions[name] = region

    def _vhdx_follow(self) -> None:
        meta = self.regions.get("vhdx_meta")
        if meta is None or "vhdx_vds" in self.regions or len(meta.data) < 32:
            return
        sig, _res, count = struct.unpack("<8sHH", meta.data[:12])
        if sig != b"metadata":
            raise ImageFormatError("VHDX metadata region signature not found")
        if count >= 2048:
            raise ImageFormatError("VHDX metadata table is too large")
        if len(meta.data) < 32 + 32 * count:
            return
        found: dict[str, int] = {}
        for i in range(count):
            entry = meta.data[32 + 32 * i:64 + 32 * i]
            found[_guid(entry[:16])] = struct.unpack("<I", entry[16:20])[0]
        if _VHDX_PARENT_LOCATOR in found:
            raise ImageFormatError("VHDX image is a differencing disk (it has a parent); "
                                   "images that refer to other files are not allowed")
        if _VHDX_VIRTUAL_DISK_SIZE in found:
            self._add_region("vhdx_vds", meta.offset + found[_VHDX_VIRTUAL_DISK_SIZE], 8)

    # -- vdi ----------------------------------------------------------------------------

    def _check_vdi(self) -> None:
        h = self._need(0x178, "vdi")
        (image_type,) = struct.unpack("<I", h[0x4C:0x50])
        if image_type not in (1, 2):
            raise ImageFormatError("VDI undo/differencing images are not allowed")

    # -- sizes --------------------------------------------------------------------------

    def _virtual_size(self, fmt: str) -> int | None:
        h = self.head
        if fmt == "raw":
            return self.pos
        if fmt == "qcow2":
            return int(struct.unpack(">Q", h[24:32])[0])
        if fmt == "vmdk":
            return int(struct.unpack("<Q", h[12:20])[0]) * 512
        if fmt == "vhd":
            return int(struct.unpack(">Q", self._need(48, "vhd")[40:48])[0])
        if fmt == "vdi":
            return int(struct.unpack("<Q", h[0x170:0x178])[0])
        if fmt == "iso":
            return self._iso_size()
        if fmt == "vhdx":
            vds = self.regions.get("vhdx_vds")
            if vds is None or not vds.complete:
                raise ImageFormatError("VHDX image is truncated (virtual size not found)")
            return int(struct.unpack("<Q", vds.data[:8])[0])
        return None

    def _iso_size(self) -> int | None:
        pvd = self.head[0x8000:0x8800]
        if len(pvd) < 132 or pvd[0] != 1:
            return None
        (blocks,) = struct.unpack("<I", pvd[80:84])
        (block_size,) = struct.unpack("<H", pvd[128:130])
        return int(blocks * block_size)
