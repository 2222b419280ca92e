"""The worker's systemd unit, as Terraform renders it, is sandboxed: `systemd-analyze security`
rates its exposure at most 4.0 (0 is locked down, 10 is unprotected)."""

from __future__ import annotations

import re

import yaml

from tools.lab import infra_checks

MAX_EXPOSURE = 4.0


def _rendered_unit(module_state) -> str:
    files = infra_checks.written_files(yaml.safe_load(infra_checks.user_data(module_state)))
    return files[infra_checks.WORKER_UNIT]


def test_rendered_worker_unit_exposure_is_at_most_4(module_state, tmp_path):
    unit = _rendered_unit(module_state)
    score, report = infra_checks.systemd_exposure(unit, tmp_path / "unit")
    assert score <= MAX_EXPOSURE, report
    assert "MemoryMax=90%" in unit  # the module's default reaches the unit
    # The sandbox keeps what the worker needs: the Neuron devices and the network.
    assert "DeviceAllow=char-neuron rw" in unit
    assert not re.search(r"^PrivateDevices=yes", unit, re.M)
    assert re.search(r"^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$", unit, re.M)


def test_the_score_tells_the_sandbox_from_none(module_state, tmp_path):
    unit = _rendered_unit(module_state)
    bare = unit[:unit.index("# Sandbox:")] + unit[unit.index("[Install]"):]
    score, report = infra_checks.systemd_exposure(bare, tmp_path / "bare")
    assert score > 8.0, report
