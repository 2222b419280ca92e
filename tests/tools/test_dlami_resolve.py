"""modfleet's requirements against the Neuron SDK 2.25 DLAMI environment, through pip's resolver,
offline (tools/lab/dlami_resolve.py; `make dlami-resolve` runs it in `make test`)."""

from __future__ import annotations

import subprocess
import sys

from tools.lab.dlami_resolve import DEFAULT_CONSTRAINT, ROOT, check, pins


def test_modfleet_resolves_beside_the_dlami_environment():
    done = check()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert pins(DEFAULT_CONSTRAINT)["torch-neuronx"] == "2.7.0.2.9.9357+08e1f40d"


def test_a_planted_numpy_requirement_above_the_environment_fails_the_check(tmp_path):
    planted = tmp_path / "setup.cfg"
    planted.write_text((ROOT / "setup.cfg").read_text().replace("numpy>=1.21.6", "numpy>=1.26"))
    assert "numpy>=1.26" in planted.read_text()
    done = subprocess.run([sys.executable, "-m", "tools.lab.dlami_resolve", "--setup-cfg",
                           str(planted)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "modfleet 0.1.0 depends on numpy>=1.26" in done.stderr
    assert "(constraint) numpy==1.23.5" in done.stderr and "ResolutionImpossible" in done.stderr
