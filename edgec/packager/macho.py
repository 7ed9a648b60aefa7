"""Reading what the bundle writer produced for phones: `ar` archives (GNU and BSD/darwin member
names), universal (fat) files, and Mach-O objects through macholib (CPU type, LC_BUILD_VERSION
platform and minimum OS, sections, symbols)."""

from __future__ import annotations

import io
import struct

from macholib import mach_o
from macholib.MachO import MachO

from edgec.errors import EdgecError

AR_MAGIC = b"!<arch>\n"
FAT_MAGIC = 0xCAFEBABE
MACHO_MAGICS = (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe")  # 64- and 32-bit, little endian
CPU_TYPE_ARM64, CPU_TYPE_X86_64 = 0x0100000C, 0x01000007  # <mach/machine.h>
CPU_NAMES = {CPU_TYPE_ARM64: "arm64", CPU_TYPE_X86_64: "x86_64", 12: "arm", 7: "i386"}
PLATFORM_NAMES = {mach_o.PLATFORM_IOS: "ios", mach_o.PLATFORM_IOSSIMULATOR: "ios-simulator",
                  mach_o.PLATFORM_MACOS: "macos", mach_o.PLATFORM_MACCATALYST: "maccatalyst"}
N_STAB, N_PEXT, N_TYPE, N_EXT, N_UNDF = 0xE0, 0x10, 0x0E, 0x01, 0x0


def is_macho(data: bytes) -> bool:
    return data[:4] in MACHO_MAGICS


def read_archive(data: bytes) -> list[tuple[str, bytes]]:
    """Members of an `ar` archive in order, without the symbol tables."""
    if not data.startswith(AR_MAGIC):
        raise EdgecError("not an ar archive")
    pos, members, gnu_names = len(AR_MAGIC), [], b""
    while pos + 60 <= len(data):
        head = data[pos:pos + 60]
        name, size = head[:16].decode().rstrip(), int(head[48:58].decode().strip() or 0)
        body = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name.startswith("#1/"):  # BSD: the name precedes the data
            n = int(name[3:])
            name, body = body[:n].rstrip(b"\0").decode(), body[n:]
        elif name == "//":  # GNU long-name table
            gnu_names = body
            continue
        elif name.startswith("/") and name[1:].isdigit():
            off = int(name[1:])
            name = gnu_names[off:gnu_names.index(b"/\n", off)].decode()
        else:
            name = name.rstrip("/")
        if name in ("", "__.SYMDEF", "__.SYMDEF SORTED", "__.SYMDEF_64", "__.SYMDEF_64 SORTED"):
            continue
        members.append((name, body))
    return members


def archive_symbol_table(data: bytes) -> list[str]:
    """Names listed in a darwin archive's `__.SYMDEF` (what Apple's linker searches)."""
    if not data.startswith(AR_MAGIC + b"#1/"):
        return []
    head = data[8:68]
    n = int(head[:16].decode().strip()[3:])
    size = int(head[48:58].decode().strip())
    body = data[68:68 + size]
    if not body[:n].rstrip(b"\0").decode().startswith("__.SYMDEF"):
        return []
    body = body[n:]
    ranlib_bytes = struct.unpack_from("<I", body, 0)[0]
    strings_at = 4 + ranlib_bytes + 4
    names = []
    for k in range(ranlib_bytes // 8):
        strx, _ = struct.unpack_from("<II", body, 4 + 8 * k)
        end = body.index(b"\0", strings_at + strx)
        names.append(body[strings_at + strx:end].decode())
    return sorted(set(names))


def fat_slices(data: bytes) -> dict[str, bytes]:
    """arch name -> slice bytes of a universal file (a thin file gives {})."""
    if len(data) < 8 or struct.unpack_from(">I", data, 0)[0] != FAT_MAGIC:
        return {}
    (count,) = struct.unpack_from(">I", data, 4)
    out = {}
    for k in range(count):
        cpu, _, off, size, _ = struct.unpack_from(">iiIII", data, 8 + 20 * k)
        out[CPU_NAMES.get(cpu, str(cpu))] = data[off:off + size]
    return out


class _MachOBytes(MachO):
    def __init__(self, data: bytes, name: str):  # MachO.__init__ insists on a file name
        self.graphident = self.filename = name
        self.loader_path = ""
        self.fat = None
        self.headers = []
        self.allow_unknown_load_commands = True
        self.load(io.BytesIO(data))


def _section_key(seg: str, sect: str) -> str | None:
    if seg in ("__LD", "__DWARF"):  # consumed by the linker / debug info: not in the app
        return None
    if sect == "__text":
        return ".text"
    if seg == "__TEXT" or seg == "__DATA_CONST" or (seg == "__DATA" and sect == "__const"):
        return ".rodata" if sect != "__eh_frame" else ".eh_frame"
    if sect in ("__bss", "__common"):
        return ".bss"
    return ".data" if seg == "__DATA" else f"{seg},{sect}"


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode()


def macho_info(data: bytes, name: str) -> dict:
    """CPU, file type, platform and minimum OS (LC_BUILD_VERSION), allocated section sizes
    (ELF-like keys so one table shows both), exported and undefined symbols."""
    header = _MachOBytes(data, name).headers[0]
    info: dict = {"file": name, "format": "mach-o", "machine": CPU_NAMES.get(header.header.cputype,
                                                                          str(header.header.cputype)),
                  "filetype": header.filetype, "platform": None, "min_os": None}
    sections: dict[str, int] = {}
    exported: list[str] = []
    hidden: list[str] = []
    undefined: list[str] = []
    for lc, cmd, payload in header.commands:
        if lc.cmd in (mach_o.LC_SEGMENT_64, mach_o.LC_SEGMENT):
            for s in payload:
                key = _section_key(_cstr(s.segname), _cstr(s.sectname))
                if key:
                    sections[key] = sections.get(key, 0) + int(s.size)
        elif lc.cmd == mach_o.LC_BUILD_VERSION:
            info["platform"] = PLATFORM_NAMES.get(cmd.platform, str(cmd.platform))
            v = int(cmd.minos)
            info["min_os"] = f"{v >> 16}.{(v >> 8) & 0xFF}" + (f".{v & 0xFF}" if v & 0xFF else "")
        elif lc.cmd == mach_o.LC_SYMTAB:
            size = 16 if header.header.magic == mach_o.MH_MAGIC_64 else 12
            strtab = data[cmd.stroff:cmd.stroff + cmd.strsize]
            for k in range(cmd.nsyms):
                strx, ntype = struct.unpack_from("<IB", data, cmd.symoff + size * k)
                if ntype & N_STAB or not ntype & N_EXT:
                    continue
                sym = _cstr(strtab[strx:])
                if ntype & N_TYPE == N_UNDF:
                    undefined.append(sym)
                else:  # private extern = hidden: visible to the static link only
                    (hidden if ntype & N_PEXT else exported).append(sym)
    info.update(sections=dict(sorted(sections.items())), exported=sorted(set(exported)),
                hidden=sorted(set(hidden)), undefined=sorted(set(undefined)))
    return info
