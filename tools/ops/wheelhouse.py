"""``python -m tools.ops.wheelhouse [--out DIR] [--constraint FILE] [--json]`` (``make wheelhouse``):
the wheels an Inf2 instance installs modfleet from, so that scale-out needs no package index.

The wheelhouse holds modfleet's own wheel, built from this tree, and the wheels of its base
requirements for the DLAMI's Python (CPython 3.10 on Ubuntu 22.04, x86-64), binaries only, except
the ones the DLAMI's transformers-neuronx environment provides (torch, transformers; the Neuron SDK
is not a requirement at all).  The instance installs with ``--no-index`` and that environment's own
package versions as constraints, so none of the DLAMI's packages is replaced (infra/README.md, "The
worker on an instance").  ``--constraint`` takes that same list (``pip list --format=freeze`` in the
DLAMI's environment), so the downloaded wheels are ones the instance can install beside it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.ops.exceptions import ToolError

DESCRIPTION = ("Build the wheelhouse an Inf2 instance installs modfleet from without a package "
               "index: modfleet's wheel and its requirements' binary wheels for the DLAMI's "
               "CPython 3.10 (manylinux, x86-64), less torch and transformers, which the DLAMI's "
               "Neuron environment provides. Then upload it with `aws s3 sync` (printed).")
ROOT = Path(__file__).resolve().parents[2]
# Provided by the DLAMI's Neuron environment, at the versions setup.cfg's neuron extra pins.
DLAMI_PROVIDED = frozenset({"torch", "transformers"})
# The Neuron SDK 2.25 multi-framework DLAMI: Ubuntu 22.04 (glibc 2.35) and its Python 3.10.
TARGET_PYTHON = "3.10"
TARGET_GLIBC = (2, 35)


@dataclass(frozen=True)
class Wheelhouse:
    """A built wheelhouse: where, modfleet's version, and the wheels in it."""

    directory: str
    version: str
    wheels: tuple[str, ...]


def platforms(glibc: tuple[int, int] = TARGET_GLIBC, arch: str = "x86_64") -> list[str]:
    """pip ``--platform`` tags a system with this glibc runs; pip does not expand
    ``manylinux_2_X`` to older ones itself (``manylinux2014`` it expands to 2010 and 1)."""
    major, minor = glibc
    return [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)] + [
        f"manylinux2014_{arch}"]


def wheel_requirements(wheel: Path) -> list[str]:
    """The base requirements in a wheel's metadata (no extras), less what the DLAMI provides."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(name).decode())
    kept = []
    for text in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(text)
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        if canonicalize_name(requirement.name) not in DLAMI_PROVIDED:
            kept.append(str(requirement))
    return kept


def build_command(out: Path) -> list[str]:
    """pip builds modfleet's wheel from this tree, with this environment's setuptools."""
    return [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
            "--wheel-dir", str(out), str(ROOT)]


def download_command(requirements: list[str], out: Path, constraint: Path | None = None,
                     python: str = TARGET_PYTHON,
                     glibc: tuple[int, int] = TARGET_GLIBC) -> list[str]:
    """pip downloads binary wheels of ``requirements`` and their dependencies for the target."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(out),
               "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
               "--abi", "cp" + python.replace(".", "")]
    for platform in platforms(glibc):
        command += ["--platform", platform]
    if constraint is not None:
        command += ["--constraint", str(constraint)]
    return command + requirements


def provided_wheels(out: Path) -> list[str]:
    """Wheels in ``out`` of packages the DLAMI provides (a dependency pulled one in)."""
    return sorted(w.name for w in out.glob("*.whl")
                  if canonicalize_name(w.name.split("-")[0]) in DLAMI_PROVIDED)


def build(out: Path, constraint: Path | None = None) -> Wheelhouse:
    """Empty ``out`` of wheels, build modfleet's, download its requirements'; the result."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    subprocess.run(build_command(out), check=True)
    wheel = next(out.glob("modfleet-*.whl"))
    subprocess.run(download_command(wheel_requirements(wheel), out, constraint), check=True)
    pulled = provided_wheels(out)
    if pulled:
        raise ToolError(f"the wheelhouse would replace the DLAMI's {', '.join(pulled)}: a "
                           "requirement depends on it; remove that requirement from setup.cfg")
    version = re.match(r"modfleet-([^-]+)-", wheel.name).group(1)
    return Wheelhouse(str(out), version, tuple(sorted(w.name for w in out.glob("*.whl"))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ops.wheelhouse", description=DESCRIPTION)
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "wheelhouse",
                        help="Directory of the wheelhouse (default dist/wheelhouse; its *.whl "
                             "files are replaced).")
    parser.add_argument("--constraint", type=Path, default=None,
                        help="The DLAMI environment's `pip list --format=freeze`: download "
                             "versions that install beside it.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    try:
        house = build(args.out, args.constraint)
    except (subprocess.CalledProcessError, ToolError) as exc:
        print(f"wheelhouse: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(house)))
    else:
        print(f"{len(house.wheels)} wheels in {house.directory} (modfleet {house.version}). "
              f"Upload for worker.version = \"{house.version}\":\n  aws s3 sync {house.directory} "
              f"s3://<model_artifacts.bucket>/wheelhouse/{house.version}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
