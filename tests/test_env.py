"""Environment capture: versions recorded, missing GPU/tools recorded rather than fatal."""

from __future__ import annotations

import json

import pytest

from fwbench.frameworks import env


def test_missing_framework_is_recorded_not_fatal(monkeypatch):
    monkeypatch.setitem(env.PROBES, "pytorch", "fwbench.no_such_module")
    info = env.probe_framework("pytorch")
    assert "error" in info and "No module named" in info["error"]


def test_missing_tool_is_recorded_with_reason(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    tools = env.gpu_tools()
    assert tools["nvidia_smi"] == {"available": False, "output": "nvidia-smi not found on PATH"}


@pytest.mark.slow
def test_env_command_writes_all_three_files(run_cli, tmp_path):
    r = run_cli("env", "-w", tmp_path)
    assert r.code == 0, r.err
    info = json.loads((tmp_path / "env.json").read_text())
    assert info["frameworks"]["pytorch"]["torch"].startswith("2.14.1")
    assert info["frameworks"]["keras"]["keras"].startswith("3.15")
    assert info["frameworks"]["keras"]["tensorflow"].startswith("2.21")
    assert info["frameworks"]["keras-jax"]["keras_backend"] == "jax"
    assert info["frameworks"]["keras-jax"]["jax"] == "0.10.2"
    assert info["frameworks"]["keras-torch"]["torch"].startswith("2.14.1")
    assert isinstance(info["frameworks"]["pytorch"]["cuda_available"], bool)
    assert info["cpu_cores"] >= 1 and info["python"].startswith("3.11")
    text = (tmp_path / "environment.txt").read_text()
    assert "nvidia-smi (" in text and "cudnn" in text
    lock = (tmp_path / "requirements_lock.txt").read_text()
    assert "torch==2.14.1" in lock and "keras==3.15" in lock


def test_env_names_each_arms_own_versions(run_cli, tmp_path, monkeypatch):
    probes = {
        "pytorch": {"torch": "2.14.1", "torchvision": "0.29.1", "gpus": []},
        "keras": {"keras": "3.15.0", "keras_backend": "tensorflow", "tensorflow": "2.21.0"},
        "keras-jax": {
            "keras": "3.15.0",
            "keras_backend": "jax",
            "jax": "0.10.2",
            "jaxlib": "0.10.2",
            "gpus": [],
        },  # fmt: skip
        "keras-torch": {"keras": "3.15.0", "keras_backend": "torch", "torch": "2.14.1"},
    }
    info = {"frameworks": probes, "nvidia_smi": {"available": False, "output": "none"}}
    monkeypatch.setattr(env, "write_environment", lambda root: info)
    out = run_cli("env", "-w", tmp_path).out
    assert "pytorch: torch 2.14.1, torchvision 0.29.1; GPUs: none" in out
    assert "keras: keras 3.15.0, tensorflow 2.21.0;" in out  # not TensorFlow's version alone
    assert "keras-jax: keras 3.15.0, jax 0.10.2, jaxlib 0.10.2;" in out  # not None
    assert "keras-torch: keras 3.15.0, torch 2.14.1;" in out
