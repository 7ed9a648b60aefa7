"""Actual machine-code size of the sparse kernels of a built object (pyelftools): the `.text`
bytes of each `*_sparsedense` function symbol, and the constant-pool bytes of the object
(`.rodata.cst*`, where weights-in-code layers keep their FMA operands on x86-64)."""

from __future__ import annotations

import io
from pathlib import Path

from elftools.elf.elffile import ELFFile


def kernel_sizes(obj: bytes | str | Path, suffix: str = "_sparsedense") -> dict:
    data = obj if isinstance(obj, bytes) else Path(obj).read_bytes()
    elf = ELFFile(io.BytesIO(data))
    funcs: dict[str, int] = {}
    symtab = elf.get_section_by_name(".symtab")
    if symtab is not None:
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] == "STT_FUNC" and sym.name.endswith(suffix):
                funcs[sym.name] = int(sym["st_size"])
    const = sum(s.data_size for s in elf.iter_sections()
                if s.name.startswith(".rodata.cst") or s.name.startswith(".rodata"))
    text = sum(s.data_size for s in elf.iter_sections() if s.name.startswith(".text"))
    return {"functions": dict(sorted(funcs.items())), "text_bytes": text, "rodata_bytes": const}
