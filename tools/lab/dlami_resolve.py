"""``python -m tools.lab.dlami_resolve`` (``make dlami-resolve``, part of ``make test``): does
modfleet install beside the DLAMI's Neuron environment?  Asked of pip's own resolver, offline.

An Inf2 instance installs modfleet with ``pip install --no-index --find-links <wheelhouse>
--constraint <the environment's own pip freeze>`` (infra/modules/region-stack/templates/
cloud-init.yaml.tftpl), so a requirement that the environment's versions do not meet (setup.cfg's
``numpy>=1.26`` against the SDK 2.25 environment's numpy 1.2x) makes pip give up and the unit is
never enabled.  This check runs that same resolution here with ``pip install --dry-run``:

- the environment: ``--constraint`` (infra/constraints/dlami-2.25-neuron-venv.txt, its sources
  cited there), each pinned package offered as a metadata-only wheel at exactly that version;
- modfleet: its wheel from ``--wheelhouse`` when one was built (``make wheelhouse``), with the
  real wheels of its requirements beside it, whose own requirements then count too; otherwise a
  metadata-only wheel with setup.cfg's ``install_requires``, and each requirement the environment
  does not pin offered at the version installed here (without its own requirements: what only a
  real wheelhouse checks).

Exit 0 when pip resolves, 1 with pip's explanation when it cannot.  No network: ``--no-index``.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONSTRAINT = ROOT / "infra" / "constraints" / "dlami-2.25-neuron-venv.txt"


def pins(constraint: Path) -> dict[str, str]:
    """``name==version`` lines of a constraints file (comments and blank lines skipped)."""
    found = {}
    for line in constraint.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            (spec,) = requirement.specifier  # a constraints file of an environment: exact pins
            found[canonicalize_name(requirement.name)] = spec.version
    return found


def install_requires(setup_cfg: Path) -> tuple[str, list[str]]:
    """modfleet's version and base requirements, as its wheel's metadata will carry them."""
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg)
    lines = [line.split("#", 1)[0].strip()
             for line in cfg["options"]["install_requires"].splitlines()]
    return cfg["metadata"]["version"], [line for line in lines if line]


def stub_wheel(directory: Path, name: str, ver: str, requires: list[str] = ()) -> Path:
    """A wheel holding only metadata: enough for pip's resolver, nothing to install."""
    dist = f"{canonicalize_name(name).replace('-', '_')}-{ver}"
    path = directory / f"{dist}-py3-none-any.whl"
    files = {f"{dist}.dist-info/METADATA": "Metadata-Version: 2.1\n"
             f"Name: {name}\nVersion: {ver}\n"
             + "".join(f"Requires-Dist: {r}\n" for r in requires),
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: modfleet\n"
             "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},sha256={_digest(t)},{len(t.encode())}\n" for n, t in files.items())
    files[f"{dist}.dist-info/RECORD"] = record + f"{dist}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def _digest(text: str) -> str:
    raw = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def offer(directory: Path, constraint: Path, setup_cfg: Path,
          wheelhouse: Path | None) -> tuple[str, list[str]]:
    """Fill ``directory`` with what pip may choose from; modfleet's version and the notes."""
    environment = pins(constraint)
    for name, ver in environment.items():
        stub_wheel(directory, name, ver)
    if wheelhouse is not None and any(wheelhouse.glob("modfleet-*.whl")):
        return _version_of(next(wheelhouse.glob("modfleet-*.whl"))), [f"wheelhouse {wheelhouse}"]
    ver, requires = install_requires(setup_cfg)
    stub_wheel(directory, "modfleet", ver, requires)
    notes = []
    for text in requires:
        name = canonicalize_name(Requirement(text).name)
        if name in environment:
            continue
        try:
            stub_wheel(directory, name, version(name))
        except PackageNotFoundError:
            notes.append(f"{name}: not installed here, so not offered")
    return ver, notes


def _version_of(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def resolve_command(directory: Path, constraint: Path, modfleet_version: str,
                    wheelhouse: Path | None) -> list[str]:
    """pip's resolver over the offered wheels (and the wheelhouse), installing nothing."""
    links = ["--find-links", str(directory)]
    if wheelhouse is not None:
        links += ["--find-links", str(wheelhouse)]
    # --isolated: no pip.conf or PIP_* variables (a configured --find-links would offer more).
    return [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--no-index",
            "--ignore-installed", "--disable-pip-version-check", *links,
            "--constraint", str(constraint), f"modfleet=={modfleet_version}"]


def check(constraint: Path = DEFAULT_CONSTRAINT, setup_cfg: Path = ROOT / "setup.cfg",
          wheelhouse: Path | None = None) -> subprocess.CompletedProcess:
    """Run the resolution; the completed pip process (returncode 0: it resolves)."""
    with tempfile.TemporaryDirectory(prefix="modfleet-resolve-") as tmp:
        ver, _ = offer(Path(tmp), constraint, setup_cfg, wheelhouse)
        return subprocess.run(resolve_command(Path(tmp), constraint, ver, wheelhouse),
                              capture_output=True, text=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lab.dlami_resolve",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--constraint", type=Path, default=DEFAULT_CONSTRAINT,
                        help="the Neuron environment's packages, name==version per line")
    parser.add_argument("--setup-cfg", type=Path, default=ROOT / "setup.cfg",
                        help="whose install_requires to check (default: this tree's)")
    parser.add_argument("--wheelhouse", type=Path, default=None,
                        help="a built wheelhouse (make wheelhouse): check its real wheels")
    args = parser.parse_args(argv)
    done = check(args.constraint, args.setup_cfg, args.wheelhouse)
    if done.returncode != 0:
        cause = done.stdout.partition("The conflict is caused by:")[2].partition("\n\n")[0]
        print(f"modfleet does not install beside {args.constraint}:{cause}\n"
              f"{done.stderr.strip()}", file=sys.stderr)
        return 1
    print(f"modfleet resolves beside {args.constraint.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
