"""A compile worker (edgec/codegen/compile_pool.py): reads (profile, opt_level, IR text) from
stdin, writes ("ok", object, seconds) or ("error", message) to stdout, until stdin closes."""

from __future__ import annotations

import os
import sys

from edgec.codegen.compile_pool import emit_one, receive, send


def main() -> None:
    # The protocol keeps its own copy of fd 1; anything else printed (by Python or by LLVM's C++)
    # goes to stderr, so it cannot corrupt a message.
    stdin, stdout = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while True:
        try:
            profile, opt_level, text = receive(stdin)
        except EOFError:
            return
        try:
            obj, secs = emit_one(profile, opt_level, text)
            send(stdout, ("ok", obj, secs))
        except Exception as exc:  # noqa: BLE001  (LLVM's message goes back to the build)
            send(stdout, ("error", f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    main()
