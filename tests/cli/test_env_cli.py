"""``lanner env``: one row per capability; what is missing names the pip command that adds it."""

from __future__ import annotations

import json
import sys

import pytest

from lanner.cli import env as env_cli
from lanner.cli.main import main


def rows(capsys: pytest.CaptureFixture, *args: str) -> dict[str, dict]:
    assert main(["env", "--json", "-", *args]) == 0
    return {r["what"]: r for r in json.loads(capsys.readouterr().out)}


def test_every_capability_has_a_row_and_the_table_prints(capsys: pytest.CaptureFixture) -> None:
    found = rows(capsys)
    assert {"lanner", "CPU", "core", "torch (train, engine)", "onnxruntime (run, compare)",
            "PyAV (decode, video sink)", "NVDEC (hwaccel: nvdec)", "brokers, metrics"} <= set(found)  # fmt: skip
    assert found["core"]["status"] == "ok" and "numpy" in found["core"]["detail"]
    assert (
        found["PyAV (decode, video sink)"]["status"] == "ok"
        and "libx264" in found["PyAV (decode, video sink)"]["detail"]
    )
    assert main(["env"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == len(found) and table[0].startswith("lanner ")


def test_a_missing_library_names_the_extra_that_adds_it(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "safetensors", None)
    found = rows(capsys)
    ort = found["onnxruntime (run, compare)"]
    assert ort["status"] == "missing" and ort["fix"] == 'pip install "lanner[pipeline]"'
    engine = found["engine (build, export)"]
    assert engine["status"] == "missing" and "safetensors" in engine["detail"] and "lanner[engine]" in engine["fix"]


def test_nvdec_without_the_package_or_a_gpu(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", None)
    assert rows(capsys)["NVDEC (hwaccel: nvdec)"]["fix"] == 'pip install "lanner[nvdec]"'
    import types

    from lanner.pipeline.sources import nvdec

    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", types.ModuleType("PyNvVideoCodec"))
    monkeypatch.setattr(nvdec, "cuda_devices", lambda: 0)
    row = rows(capsys)["NVDEC (hwaccel: nvdec)"]
    assert row["status"] == "missing" and "torch sees no CUDA GPU" in row["detail"]
    monkeypatch.setattr(nvdec, "cuda_devices", lambda: 2)
    assert rows(capsys)["NVDEC (hwaccel: nvdec)"] == {
        "what": "NVDEC (hwaccel: nvdec)", "status": "ok", "detail": "PyNvVideoCodec installed, 2 GPU(s)", "fix": ""
    }  # fmt: skip


@pytest.mark.parametrize(("isa", "status"), [(["avx2", "fma"], "note"), (["avx2", "avx512_vnni"], "ok")])
def test_the_cpu_row_warns_about_int8_without_vnni(capsys, monkeypatch, isa: list[str], status: str) -> None:
    import lanner.engine.fingerprint as fingerprint

    device = {"kind": "cpu", "model": "Test CPU", "arch": "x86_64", "isa": isa}
    monkeypatch.setattr(fingerprint, "device_fingerprint", lambda: device)
    row = rows(capsys)["CPU"]
    assert row["status"] == status and row["detail"].startswith("Test CPU, ")
    assert ("VNNI" in row["fix"]) == (status == "note")


def test_a_probe_that_breaks_is_a_row_not_a_crash(capsys, monkeypatch) -> None:
    def broken() -> env_cli.Row:
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(env_cli, "PROBES", (*env_cli.PROBES, broken))
    found = rows(capsys)
    assert found["broken"]["status"] == "missing" and "driver exploded" in found["broken"]["detail"]


def test_json_to_a_file(tmp_path, capsys) -> None:
    target = tmp_path / "env.json"
    assert main(["env", "--json", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    assert {r["what"] for r in json.loads(target.read_text())} >= {"lanner", "CPU"}
