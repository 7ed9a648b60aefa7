"""Read a bundle back: target, I/O, sizes by section, exported symbols (pyelftools for ELF)."""

from __future__ import annotations

from pathlib import Path

from elftools.elf.elffile import ELFFile

from edgec.packager.bundle import read_manifest

EF_ARM_ABI_FLOAT_HARD = 0x400
EF_ARM_ABI_FLOAT_SOFT = 0x200


def _elf_info(path: Path) -> dict:
    with path.open("rb") as f:
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
        info = {"file": path.name, "machine": elf["e_machine"], "class": elf.elfclass,
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
    objects = {}
    for rel in (f"obj/{name}_kernels.o", f"obj/{name}_weights.o", f"lib/lib{name}.so"):
        p = path / rel
        if p.is_file() and p.read_bytes()[:4] == b"\x7fELF":
            objects[rel] = _elf_info(p)
    return {"name": name, "device": m["device"], "target": m["target"], "inputs": m["inputs"],
            "outputs": m["outputs"], "arena_bytes": m["arena_bytes"], "weight_bytes": m["weight_bytes"],
            "code_text_bytes": m.get("code_text_bytes"), "ops": m.get("ops", {}),
            "edgec_version": m["edgec_version"], "model_sha256": m.get("model_sha256"),
            "objects": objects, "files": {k: (path / k).stat().st_size for k in m.get("files", {})}}
