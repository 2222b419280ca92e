"""The wheelhouse an Inf2 instance installs modfleet from: modfleet's own wheel, and what pip is
asked to download beside it (binaries for the DLAMI's CPython 3.10, never torch or transformers).

The download itself needs PyPI and is not run here; `make wheelhouse` runs it.
"""

from __future__ import annotations

import configparser
import subprocess
import sys

from packaging.requirements import Requirement

from tools import wheelhouse
from tools.wheelhouse import ROOT


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
    done = subprocess.run([sys.executable, "-m", "tools.wheelhouse", "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert "--constraint" in done.stdout and "aws s3 sync" in done.stdout
