"""Read a bundle back: target, I/O, sizes by section, exported symbols (pyelftools for ELF,
macholib for the Mach-O objects of iOS bundles), and a size table by origin per slice."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from elftools.elf.elffile import ELFFile

from edgec.packager.bundle import read_manifest, verify_bundle

EF_ARM_ABI_FLOAT_HARD = 0x400
EF_ARM_ABI_FLOAT_SOFT = 0x200


def _elf_info(path: Path) -> dict:
    with path.open("rb") as f:
        return _elf_stream_info(f, path.name)


def _elf_stream_info(f: BinaryIO, name: str) -> dict:
    elf = ELFFile(f)
    sections: dict[str, int] = {}
    for s in elf.iter_sections():
        if s["sh_flags"] & 0x2:  # SHF_ALLOC: bytes that end up in memory
            key = (".text" if s.name.startswith(".text") else
                   ".rodata" if s.name.startswith(".rodata") or s.name.startswith(".data.rel.ro") else
                   ".data" if s.name.startswith(".data") else
                   ".bss" if s.name.startswith(".bss") else s.name)
            sections[key] = sections.get(key, 0) + s.data_size
    symbols: list[str] = []
    undefined: list[str] = []
    symtab = elf.get_section_by_name(".dynsym") or elf.get_section_by_name(".symtab")
    if symtab is not None:
        for sym in symtab.iter_symbols():
            if sym["st_info"]["bind"] not in ("STB_GLOBAL", "STB_WEAK") or not sym.name:
                continue
            if sym["st_shndx"] == "SHN_UNDEF":
                undefined.append(sym.name)
            elif sym["st_other"]["visibility"] == "STV_DEFAULT":
                symbols.append(sym.name)
    info = {"file": name, "machine": elf["e_machine"], "class": elf.elfclass,
            "sections": dict(sorted(sections.items())), "exported": sorted(set(symbols)),
            "undefined": sorted(set(undefined))}
    if elf["e_machine"] == "EM_ARM":
        flags = elf["e_flags"]
        info["float_abi"] = ("hard" if flags & EF_ARM_ABI_FLOAT_HARD else
                             "soft" if flags & EF_ARM_ABI_FLOAT_SOFT else "unspecified")
    return info


def inspect_bundle(path: str | Path) -> dict:
    path = Path(path)
    m = read_manifest(path)
    name = m["name"]
    # only files edgec wrote, unmodified, reach the ELF/Mach-O parsers
    verify_bundle(path, m, [rel for rel in (f"obj/{name}_kernels.o", f"obj/{name}_weights.o", f"lib/lib{name}.so")
                            if (path / rel).is_file()])
    objects = {}
    for rel in (f"obj/{name}_kernels.o", f"obj/{name}_weights.o", f"lib/lib{name}.so"):
        p = path / rel
        if p.is_file() and p.read_bytes()[:4] == b"\x7fELF":
            objects[rel] = _elf_info(p)
    slices = [_slice_info(path, name, s, objects) for s in m.get("slices", [])]
    sizes = ([s["sizes"] for s in slices] if slices else
             [_sizes(path, name, m["device"], f"lib/lib{name}.a", f"lib/lib{name}.so")])
    info = {"name": name, "device": m["device"], "target": m["target"], "inputs": m["inputs"],
            "outputs": m["outputs"], "arena_bytes": m["arena_bytes"], "weight_bytes": m["weight_bytes"],
            "code_text_bytes": m.get("code_text_bytes"), "ops": m.get("ops", {}),
            "edgec_version": m["edgec_version"], "model_sha256": m.get("model_sha256"),
            "source_format": m.get("source_format", "onnx"),
            "objects": objects, "files": {k: (path / k).stat().st_size for k in m.get("files", {})},
            "sizes": [s for s in sizes if s]}
    if slices:
        info["slices"] = slices
    return info


# --- size table and phone bundles (Android .so per ABI, iOS Mach-O slices) ---

def object_info(data: bytes, name: str) -> dict | None:
    """ELF (pyelftools) or Mach-O (macholib) object/library info; None for other files."""
    if data[:4] == b"\x7fELF":
        return _elf_stream_info(io.BytesIO(data), name)
    from edgec.packager.macho import is_macho, macho_info

    return macho_info(data, name) if is_macho(data) else None


def _alloc(info: dict, text_only: bool = False) -> int:
    sec = info["sections"]
    return sec.get(".text", 0) if text_only else sum(v for k, v in sec.items() if k != ".bss")


def _sizes(path: Path, name: str, slice_name: str, lib_rel: str, so_rel: str | None) -> dict | None:
    """Bytes by origin for one slice: generated code (kernels object), weights, runtime (runtime
    + model glue), from the static library's members; plus the shared library when there is one."""
    from edgec.packager.macho import read_archive

    lib = path / lib_rel
    if not lib.is_file():
        return None
    row = {"slice": slice_name, "code": 0, "weights": 0, "runtime": 0, "runtime_text": 0,
           "static_library_bytes": lib.stat().st_size}
    for member, data in read_archive(lib.read_bytes()):
        info = object_info(data, member)
        if info is None:
            continue
        if member.endswith("_kernels.o"):
            row["code"] += _alloc(info)
        elif member.endswith("_weights.o"):
            row["weights"] += _alloc(info)
        else:
            row["runtime"] += _alloc(info)
            row["runtime_text"] += _alloc(info, text_only=True)
    so = path / so_rel if so_rel else None
    if so is not None and so.is_file():
        so_info = _elf_info(so)
        row["shared_library_bytes"] = so.stat().st_size
        # JNI bridge, libgcc helpers, dynamic symbol and relocation tables.
        row["shared_library_other"] = _alloc(so_info) - row["code"] - row["weights"] - row["runtime"]
    return row


def _slice_info(path: Path, name: str, s: dict, objects: dict) -> dict:
    out = {k: s[k] for k in ("abi", "device", "triple") if k in s}
    for rel in s.get("objects", []):
        p = path / rel
        if p.is_file():
            info = object_info(p.read_bytes(), p.name)
            if info is not None:
                objects[rel] = info
    so_rel = s.get("shared_library")
    if so_rel and (path / so_rel).is_file():
        objects[so_rel] = lib = _elf_info(path / so_rel)
        out.update(machine=lib["machine"], exported=lib["exported"], undefined=lib["undefined"])
        if "float_abi" in lib:
            out["float_abi"] = lib["float_abi"]
        out["min_api"] = s.get("min_api")
    else:
        kernels = objects.get(s["objects"][0], {}) if s.get("objects") else {}
        out.update(machine=kernels.get("machine"), platform=kernels.get("platform"),
                   min_os=kernels.get("min_os"))
    out["sizes"] = _sizes(path, name, s["abi"], s["static_library"], so_rel)
    return out
