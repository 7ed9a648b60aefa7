"""Ray is an optional extra (`edgec[farm]`): without it `edgec tune --cluster ray` says which
package to install, in one line with exit code 2, before it touches a device or the log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.remote.conftest import assert_clean, cli


@pytest.mark.parametrize("cluster", ["ray", "ray://127.0.0.1:10001"])
def test_cluster_ray_without_ray(tmp_path: Path, small_model_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 cluster: str) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    log = tmp_path / "t.jsonl"
    assert_clean(cli("tune", str(small_model_path), "--device", "local", "--log", str(log), "--cluster", cluster),
                 2, "pip install 'edgec[farm]'")
    assert not log.exists()
