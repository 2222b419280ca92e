"""The wheelhouse an Inf2 instance installs modfleet from: modfleet's own wheel, and what pip is
asked to download beside it (binaries for the DLAMI's CPython 3.10, never torch or transformers).

The download itself needs PyPI and is not run here; `make wheelhouse` runs it.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile

from packaging.requirements import Requirement

from tools.ops import wheelhouse
from tools.ops.wheelhouse import ROOT


def _setup_cfg_requirements() -> dict[str, str]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = [line.strip() for line in setup["options"]["install_requires"].splitlines()]
    return {Requirement(line).name: line for line in lines if line and not line.startswith("#")}


def test_the_wheel_carries_setup_cfgs_requirements_less_what_the_dlami_provides(tmp_path):
    subprocess.run(wheelhouse.build_command(tmp_path), check=True, capture_output=True)
    [wheel] = tmp_path.glob("modfleet-*-py3-none-any.whl")
    kept = {Requirement(r).name: r for r in wheelhouse.wheel_requirements(wheel)}
    expected = _setup_cfg_requirements()
    assert {"torch", "transformers"} <= set(expected)
    assert set(kept) == set(expected) - {"torch", "transformers"}
    assert "av" in kept and "aiobotocore" in kept and "structlog" in kept
    # No extra's requirement (moto, pytest, the Neuron SDK) is downloaded for the instance.
    assert not {"moto", "pytest", "torch-neuronx", "transformers-neuronx"} & set(kept)


def test_the_download_takes_binaries_for_the_dlamis_python_only(tmp_path):
    constraint = tmp_path / "dlami-packages.txt"
    command = wheelhouse.download_command(["av>=12"], tmp_path, constraint)
    assert command[command.index("--python-version") + 1] == "3.10"
    assert command[command.index("--abi") + 1] == "cp310"
    assert "--only-binary=:all:" in command
    assert command[command.index("--constraint") + 1] == str(constraint)
    assert command[-1] == "av>=12"
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == wheelhouse.platforms()


def test_platforms_are_those_ubuntu_22_04s_glibc_runs():
    tags = wheelhouse.platforms((2, 35))
    assert tags[0] == "manylinux_2_35_x86_64" and "manylinux_2_28_x86_64" in tags
    assert tags[-2:] == ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    assert "manylinux_2_36_x86_64" not in tags


def test_a_wheel_of_a_dlami_package_is_found(tmp_path):
    for name in ("torch-2.7.0-cp310-cp310-manylinux_2_28_x86_64.whl",
                 "Transformers-4.47.1-py3-none-any.whl", "av-14.0.0-cp310-cp310-any.whl"):
        (tmp_path / name).write_bytes(b"")
    assert wheelhouse.provided_wheels(tmp_path) == [
        "Transformers-4.47.1-py3-none-any.whl", "torch-2.7.0-cp310-cp310-manylinux_2_28_x86_64.whl"]


def test_help():
    done = subprocess.run([sys.executable, "-m", "tools.ops.wheelhouse", "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert "--constraint" in done.stdout and "aws s3 sync" in done.stdout


def test_the_wheel_leaves_the_lab_out_and_its_cli_says_so(tmp_path):
    subprocess.run(wheelhouse.build_command(tmp_path), check=True, capture_output=True)
    [wheel] = tmp_path.glob("modfleet-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    packages = {name.split("/")[0] for name in names if name.endswith(".py")}
    assert packages == {"model", "worker", "tools"}
    assert not [name for name in names if name.startswith("tools/lab/")]
    assert {"tools/ops/cli.py", "tools/ops/commands/replay_dlq.py", "tools/ops/wheelhouse.py",
            "worker/schemas/verdict-v1.json", "model/policies/default.json"} <= set(names)
    # Installed alone (its dependencies are this environment's), the CLI works and a lab command
    # refuses in one line.
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True)
    # This venv has modfleet installed editable, and its import hook would serve tools.lab from
    # the checkout; an instance has no such hook, so the run drops it first.
    as_on_an_instance = (
        "import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path "
        "if 'Editable' not in getattr(f, '__name__', type(f).__name__)]; "
        "runpy.run_module('tools.ops.cli', run_name='__main__')")
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-c", as_on_an_instance, *args], cwd=tmp_path, env=env, text=True,
        capture_output=True, timeout=60)
    assert "replay-dlq" in run("--help").stdout
    assert "--presets" not in run("bench", "--help").stdout  # the lab's flags are absent
    done = run("demo")
    assert done.returncode == 2, done.stderr
    assert "needs the lab" in done.stderr and "Traceback" not in done.stderr
