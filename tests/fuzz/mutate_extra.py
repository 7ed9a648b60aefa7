"""Mutations beyond single proto fields: local functions, hostile names, the serialized file
(truncation, byte flips) and external data (escaping paths, symlinks, FIFOs, bad offsets).

Byte-level and external-data mutations produce files: an `Artifact` is the model's bytes plus
extra files, written into the case's directory by the parent before the case runs."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import AttributeProto, TensorProto, helper

from tests.fuzz.core import MARKER, MARKER_CMD

C_PAYLOAD = (
    'x??/";\n__attribute__((constructor)) static void pwn(void) { extern int system(const char *); '
    f'system("{MARKER_CMD}"); }}\nstatic const char *q = "'
)
PAYLOADS = [
    C_PAYLOAD,
    "*/ int injected = 1; /* \\ \\\\ ??= ??/\n",
    '"); static { System.exit(3); } // \\u0022 + \\u000a',
    '\\(fatalError("swift")) """ \r\n\t%s%n%x [/] [bold]x[/]',
    f"$({MARKER_CMD}) `{MARKER_CMD}`; {MARKER_CMD}",
    "é名 \U0001d11e \u2028 \u202e\x7f\x1b[31m",
    f"../../{MARKER}",
    "[red]x[/red] [link=file:///etc/passwd]y[/link] [/]",
    "%s%s%s%n%n",
    "x\x00y",
    "   ",
]


@dataclass
class Artifact:
    """A model file to write at model/model.onnx, and extra files: relative path -> bytes, or
    ("symlink", target) / ("fifo", None) / ("dir", None)."""

    data: bytes
    files: dict[str, object] = field(default_factory=dict)
    accept_is: str = ""  # class of an accepted build (e.g. "security"), "" = ask the oracle
    proto_only: bool = False  # must be passed to edgec.build as a ModelProto

    def write(self, case_dir: Path) -> Path:
        model_dir = case_dir / "model"
        model_dir.mkdir(exist_ok=True)
        for rel, spec in self.files.items():
            p = case_dir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(spec, bytes):
                p.write_bytes(spec)
            elif spec[0] == "symlink":
                os.symlink(spec[1], p)
            elif spec[0] == "fifo":
                os.mkfifo(p)
            else:
                p.mkdir(exist_ok=True)
        data = self.data
        if b"@ABS@" in data:  # an absolute location: known only now
            m = onnx.load_from_string(data)
            for t in m.graph.initializer:
                for e in t.external_data:
                    e.value = e.value.replace("@ABS@", str(case_dir))
            data = m.SerializeToString()
        path = model_dir / "model.onnx"
        path.write_bytes(data)
        return path


# ---- names -------------------------------------------------------------------------------------
def rename_all(m: onnx.ModelProto, mapping: dict[str, str]) -> None:
    """Rename tensors everywhere they occur in the main graph."""
    g = m.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        vi.name = mapping.get(vi.name, vi.name)
    for t in g.initializer:
        t.name = mapping.get(t.name, t.name)
    for n in g.node:
        n.input[:] = [mapping.get(x, x) for x in n.input]
        n.output[:] = [mapping.get(x, x) for x in n.output]


def _tensor_names(m: onnx.ModelProto) -> list[str]:
    g = m.graph
    names = [i.name for i in g.input] + [o for n in g.node for o in n.output if o]
    return list(dict.fromkeys(names + [t.name for t in g.initializer]))


def names_payload(m: onnx.ModelProto, rng: random.Random) -> str:
    names = _tensor_names(m)
    chosen = rng.sample(names, k=min(len(names), rng.choice([1, 2, 3, len(names)])))
    mapping = {}
    for k, n in enumerate(chosen):
        p = rng.choice(PAYLOADS)
        mapping[n] = p if p not in mapping.values() else f"{p}#{k}"
    if rng.random() < 0.5:  # the C payload on the input, whose name reaches the most places
        mapping[m.graph.input[0].name] = C_PAYLOAD
        if list(mapping.values()).count(C_PAYLOAD) > 1:
            mapping[m.graph.input[0].name] = C_PAYLOAD + "#in"
    rename_all(m, mapping)
    return f"{len(mapping)} tensor names -> payloads"


def names_meta(m: onnx.ModelProto, rng: random.Random) -> str:
    p = rng.choice(PAYLOADS)
    where = rng.choice(["graph", "node", "doc", "producer", "metadata"])
    if where == "graph":
        m.graph.name = p
    elif where == "node":
        for n in m.graph.node:
            n.name = p
    elif where == "doc":
        m.doc_string = m.graph.doc_string = p
        m.graph.node[0].doc_string = p
    elif where == "producer":
        m.producer_name, m.producer_version, m.domain = p, p, p
    else:
        helper.set_model_props(m, {p: p, "name": p})
    return f"{where} -> payload {p[:20]!r}"


def names_shape(m: onnx.ModelProto, rng: random.Random) -> str:
    """Clashing after sanitising, empty, very long, unicode-only, identical input/output."""
    g = m.graph
    how = rng.choice(["clash", "clash", "empty", "long", "unicode", "same_as_input"])
    out = g.output[0].name
    if how == "clash":  # a second graph output whose name sanitises to the first one's
        first = g.node[0].output[0]
        pair = rng.choice(
            [("a b", "a_b"), ("a.b", "a_b"), ("A", "a"), ("con", "con.npy"), ("..", ".")]
        )
        g.output.append(helper.make_tensor_value_info(first, TensorProto.FLOAT, None))
        rename_all(m, {out: pair[0], first: pair[1]})
        return f"outputs named {pair!r}"
    if how == "empty":
        rename_all(m, {rng.choice(_tensor_names(m)): ""})
        return "a tensor named ''"
    if how == "long":
        n = rng.choice([300, 5000, 100_000])
        rename_all(m, {name: name + "x" * n for name in _tensor_names(m)})
        return f"every name {n} characters longer"
    if how == "unicode":
        rename_all(
            m,
            {name: f"\u0646\u0627\u0645{k}\u200b\ufeff" for k, name in enumerate(_tensor_names(m))},
        )
        return "unicode names with zero-width characters"
    rename_all(m, {out: g.input[0].name})
    return "output renamed to the input's name"


INVALID_UTF8_TAG = "@@UTF8@@"


def names_invalid_utf8(m: onnx.ModelProto, rng: random.Random) -> bytes:
    """A tensor name that is not UTF-8 (protobuf strings are bytes on the wire)."""
    name = rng.choice(_tensor_names(m))
    rename_all(m, {name: INVALID_UTF8_TAG})
    return m.SerializeToString().replace(
        INVALID_UTF8_TAG.encode(), b"\xff\xfe\xc0\xaf\xed\xa0\x80\x80"
    )


# ---- local functions ---------------------------------------------------------------------------
def _fn(
    name: str,
    body: list[onnx.NodeProto],
    inputs: tuple[str, ...] = ("a",),
    opset: int = 17,
    attrs: tuple[str, ...] = (),
) -> onnx.FunctionProto:
    return helper.make_function(
        "local",
        name,
        list(inputs),
        ["o"],
        body,
        [helper.make_opsetid("", opset), helper.make_opsetid("local", 1)],
        attributes=list(attrs),
    )


def functions_odd(m: onnx.ModelProto, rng: random.Random) -> str:
    """Mutates the call to `local.F`: the seed's first node becomes `F(x)` when it has none."""
    g = m.graph
    if not any(n.domain == "local" for n in g.node):
        n0 = g.node[0]
        g.node.insert(
            0, helper.make_node("F", [n0.input[0]], ["f_out"], domain="local", name="call")
        )
        n0.input[0] = "f_out"
        m.opset_import.append(helper.make_opsetid("local", 1))
    call = next(n for n in g.node if n.domain == "local")
    fname = call.op_type
    ident = [helper.make_node("Relu", ["a"], ["o"])]
    how = rng.choice(
        [
            "recursive",
            "mutual",
            "duplicate",
            "missing",
            "arity",
            "attr_ref",
            "opset_mismatch",
            "deep",
            "body_bad",
            "name_payload",
            "valid",
        ]
    )
    del m.functions[:]
    if how == "recursive":
        m.functions.append(_fn(fname, [helper.make_node(fname, ["a"], ["o"], domain="local")]))
    elif how == "mutual":
        m.functions.extend(
            [
                _fn(fname, [helper.make_node("G", ["a"], ["o"], domain="local")]),
                _fn("G", [helper.make_node(fname, ["a"], ["o"], domain="local")]),
            ]
        )
    elif how == "duplicate":
        m.functions.extend([_fn(fname, ident), _fn(fname, [helper.make_node("Neg", ["a"], ["o"])])])
    elif how == "arity":
        m.functions.append(_fn(fname, ident))
        call.input.append(call.input[0])
        call.output.append("extra")
    elif how == "attr_ref":
        body = [helper.make_node("LeakyRelu", ["a"], ["o"])]
        body[0].attribute.append(helper.make_attribute_ref("alpha", AttributeProto.FLOAT))
        m.functions.append(_fn(fname, body, attrs=("alpha",)))
    elif how == "opset_mismatch":
        m.functions.append(_fn(fname, ident, opset=rng.choice([1, 9, 99999])))
    elif how == "deep":
        depth = rng.choice([10, 40])
        for k in range(depth):
            callee = (
                [helper.make_node(f"D{k + 1}", ["a"], ["o"], domain="local")]
                if k < depth - 1
                else ident
            )
            m.functions.append(_fn(fname if k == 0 else f"D{k}", callee))
    elif how == "body_bad":
        m.functions.append(
            _fn(
                fname,
                [
                    rng.choice(
                        [
                            helper.make_node("Bogus", ["a"], ["o"]),
                            helper.make_node("Relu", ["nowhere"], ["o"]),
                            helper.make_node("Relu", ["a"], ["p"]),
                        ]
                    )
                ],
            )
        )
    elif how == "name_payload":
        payload = rng.choice(PAYLOADS)
        m.functions.append(
            helper.make_function(
                payload, payload, ["a"], ["o"], ident, [helper.make_opsetid("", 17)]
            )
        )
        call.domain, call.op_type = payload, payload
        m.opset_import.append(helper.make_opsetid(payload, 1))
    elif how == "valid":
        m.functions.append(_fn(fname, ident))
    return f"local function {how}"


# ---- the serialized file -----------------------------------------------------------------------
def file_bytes(m: onnx.ModelProto, rng: random.Random) -> tuple[bytes, str]:
    data = m.SerializeToString()
    how = rng.choice(["truncate", "truncate", "byteflip", "byteflip", "garbage"])
    if how == "truncate":
        n = rng.choice([1, 2, rng.randrange(len(data)), len(data) - 1, len(data) // 2])
        return data[:n], f"truncated to {n} of {len(data)} bytes"
    if how == "byteflip":
        buf = bytearray(data)
        k = rng.choice([1, 1, 2, 4, 16])
        for _ in range(k):
            buf[rng.randrange(len(buf))] ^= rng.randrange(1, 256)
        return bytes(buf), f"{k} bytes flipped"
    kind = rng.choice(["random", "elf", "zip", "json", "varint"])
    junk = {
        "random": bytes(rng.randrange(256) for _ in range(512)),
        "elf": b"\x7fELF\x02\x01\x01" + bytes(200),
        "zip": b"PK\x03\x04" + bytes(100),
        "json": b'{"graph": {"node": []}}',
        "varint": b"\x08" + b"\xff" * 20 + b"\x3a\xff\xff\xff\xff\x0f",
    }[kind]
    return junk, f"not a model: {kind}"


# ---- external data -----------------------------------------------------------------------------
def external_data(m: onnx.ModelProto, rng: random.Random) -> tuple[Artifact, str]:
    """Moves the largest initializer to external data and points it somewhere hostile."""
    t = max(m.graph.initializer, key=lambda x: len(x.raw_data))
    raw = bytes(t.raw_data)
    n = len(raw)
    t.raw_data = b""
    t.data_location = TensorProto.EXTERNAL
    how = rng.choice(
        [
            "valid",
            "valid_offset",
            "absolute",
            "etc_passwd",
            "dotdot",
            "dotdot_inner",
            "directory",
            "missing",
            "symlink_out",
            "symlink_in",
            "fifo",
            "dev_zero",
            "offset_beyond",
            "length_beyond",
            "negative_offset",
            "text_offset",
            "huge_length",
            "length_short",
            "empty_location",
            "nul_location",
            "proto_input",
        ]
    )
    loc, offset, length = "w.bin", None, None
    files: dict[str, object] = {"model/w.bin": raw, "secret.bin": raw}
    accept_is = ""
    if how == "valid_offset":
        files["model/w.bin"] = b"\0" * 16 + raw
        offset, length = "16", str(n)
    elif how == "absolute":
        loc, accept_is = "@ABS@/secret.bin", "security"
    elif how == "etc_passwd":
        loc, accept_is = "/etc/passwd", "security"
    elif how == "dotdot":
        loc, accept_is = "../secret.bin", "security"
    elif how == "dotdot_inner":
        files["model/sub"] = ("dir", None)
        loc = "sub/../w.bin"
    elif how == "directory":
        loc = rng.choice([".", "sub", "sub/"])
        files["model/sub"] = ("dir", None)
    elif how == "missing":
        loc = "nope.bin"
    elif how == "symlink_out":
        loc, accept_is = "link.bin", "security"
        files["model/link.bin"] = ("symlink", "../secret.bin")
    elif how == "symlink_in":
        loc = "link.bin"
        files["model/link.bin"] = ("symlink", "w.bin")
    elif how == "fifo":
        loc = "pipe.bin"
        files["model/pipe.bin"] = ("fifo", None)
    elif how == "dev_zero":
        loc, accept_is = "zero.bin", "security"
        files["model/zero.bin"] = ("symlink", "/dev/zero")
    elif how == "offset_beyond":
        offset = str(n + 100)
    elif how == "length_beyond":
        length = str(n * 10)
    elif how == "negative_offset":
        offset = "-4"
    elif how == "text_offset":
        offset = rng.choice(["abc", "0x10", "1e3", " 0", "99999999999999999999999"])
    elif how == "huge_length":
        length = str(2**63 - 1)
    elif how == "length_short":
        length = str(max(0, n - 4))
    elif how == "empty_location":
        loc = ""
    elif how == "nul_location":
        loc = "w.bin\0.txt"
    elif how == "proto_input":
        accept_is = "security"  # nothing to read relative to: cwd holds a w.bin of its own
        files["w.bin"] = raw
    entries = {"location": loc, "offset": offset, "length": length}
    for k, v in entries.items():
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, v
    art = Artifact(b"", files, accept_is, proto_only=how == "proto_input")
    art.data = m.SerializeToString()
    return art, f"{t.name} external: {how} (location {loc!r}, offset {offset}, length {length})"
