"""The real Terraform CLI on infra/: init from the local provider mirror, validate every region
root, run the native tests (mocked provider), and fail on a module with a planted error.

Skipped only where no terraform binary exists; a missing provider mirror is a failure that says
where the mirror is looked for (MODFLEET_TF_PLUGIN_DIR).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.lab import terraform
from tools.lab.exceptions import TerraformUnavailable

INFRA = terraform.INFRA
MODULE = "modules/region-stack"
ROOTS = [f"regions/{p.name}" for p in terraform.region_roots(INFRA)]


@pytest.fixture(scope="session")
def tf_tools(tmp_path_factory) -> terraform.Toolchain:
    try:
        terraform.find_terraform()
    except TerraformUnavailable as exc:
        pytest.skip(str(exc))
    try:
        return terraform.toolchain(tmp_path_factory.mktemp("terraform"))
    except TerraformUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def tf_infra(tmp_path_factory, tf_tools) -> Path:
    """A copy of infra/ with the module and every root initialized (offline)."""
    infra = terraform.copy_infra(tmp_path_factory.mktemp("tf-infra") / "infra")
    for directory in [MODULE, *ROOTS]:
        terraform.Terraform(tf_tools, infra / directory).init()
    return infra


def test_there_are_region_roots_to_check():
    assert len(ROOTS) >= 2, ROOTS


@pytest.mark.parametrize("directory", [MODULE, *ROOTS])
def test_terraform_validate_passes(tf_tools, tf_infra, directory):
    result = terraform.Terraform(tf_tools, tf_infra / directory).validate()
    assert result["valid"], [d.get("summary", "") + ": " + d.get("detail", "")
                             for d in result["diagnostics"]]
    assert result["warning_count"] == 0, result["diagnostics"]


@pytest.mark.parametrize("directory", [MODULE, *ROOTS])
def test_native_terraform_tests_pass(tf_tools, tf_infra, directory):
    report = terraform.Terraform(tf_tools, tf_infra / directory).test()
    expected = _run_names(tf_infra / directory)
    assert report.ok, _failures(report.output)
    assert report.runs == {name: "pass" for name in expected}


def test_every_validation_and_precondition_has_a_refusal_test():
    """Each variable validation and each pre/postcondition is the target of an expect_failures."""
    tests = "\n".join(p.read_text() for p in INFRA.glob("*/*/tests/*.tftest.hcl"))
    targets = re.findall(r"expect_failures\s*=\s*\[([^\]]+)\]", tests)
    refused: dict[str, int] = {}
    for target in targets:
        for address in target.split(","):
            refused[address.strip()] = refused.get(address.strip(), 0) + 1
    wanted = {**_validations(INFRA / MODULE), **_validations(INFRA / ROOTS[0])}
    wanted.update(_conditions(INFRA / MODULE))
    wanted.update(_conditions(INFRA / ROOTS[0]))
    short = {address: (count, refused.get(address, 0)) for address, count in wanted.items()
             if refused.get(address, 0) < count}
    assert wanted and short == {}, f"checks -> (how many, refusal tests): {short}"


# ---- A planted error makes these tests fail --------------------------------------------------


@pytest.fixture()
def planted(tmp_path, tf_tools):
    """A copy of infra/ with one text of the module replaced, initialized."""

    def plant(relative: str, old: str, new: str) -> terraform.Terraform:
        infra = terraform.copy_infra(tmp_path / "infra")
        path = infra / MODULE / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} should occur once in {relative}"
        path.write_text(text.replace(old, new))
        module = terraform.Terraform(tf_tools, infra / MODULE)
        module.init()
        return module

    return plant


def test_a_broken_reference_fails_validate(planted):
    module = planted("main.tf", "deadLetterTargetArn = aws_sqs_queue.dlq.arn",
                     "deadLetterTargetArn = aws_sqs_queue.dead_letters.arn")
    result = module.validate()
    assert not result["valid"]
    assert any(d["summary"] == "Reference to undeclared resource"
               and '"dead_letters"' in d["detail"] for d in result["diagnostics"]), result


def test_a_validation_that_lets_bad_input_through_fails_the_native_tests(planted):
    module = planted("variables.tf", "var.queue.max_receive_count >= 1 &&",
                     "var.queue.max_receive_count >= 0 &&")
    assert module.validate()["valid"]  # still valid HCL: only the tests can catch it
    report = module.test("-filter=tests/refusals.tftest.hcl")
    assert not report.ok
    # "fail" (no expected failure) or "error" (the plan went on and the mock refused it)
    assert report.runs["refusals.tftest.hcl/rejects_a_max_receive_count_of_zero"] != "pass"


# ---- Helpers -----------------------------------------------------------------------------------


def _run_names(directory: Path) -> list[str]:
    return [f"{path.name}/{name}" for path in sorted((directory / "tests").glob("*.tftest.hcl"))
            for name in re.findall(r'^run "([^"]+)"', path.read_text(), re.M)]


def _validations(directory: Path) -> dict[str, int]:
    """var.NAME -> number of validation blocks, for every variable of a directory."""
    counts: dict[str, int] = {}
    for path in directory.glob("*.tf"):
        for name, body in _blocks(path.read_text(), r'variable "([a-z_0-9]+)"'):
            if body.count("validation {"):
                counts[f"var.{name}"] = body.count("validation {")
    return counts


def _conditions(directory: Path) -> dict[str, int]:
    """ADDRESS -> number of precondition/postcondition blocks in that resource or data source."""
    counts: dict[str, int] = {}
    for path in directory.glob("*.tf"):
        pattern = r'(resource|data) "([a-z0-9_]+)" "([a-z0-9_]+)"'
        for (kind, rtype, name), body in _blocks(path.read_text(), pattern):
            found = body.count("precondition {") + body.count("postcondition {")
            if found:
                counts[("data." if kind == "data" else "") + f"{rtype}.{name}"] = found
    return counts


def _blocks(text: str, header: str):
    """(captured header groups, body) of each top-level block whose header matches."""
    for match in re.finditer(r"^" + header + r" \{", text, re.M):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        groups = match.groups()
        yield (groups[0] if len(groups) == 1 else groups), text[match.end():end]


def _failures(output: str) -> str:
    lines = [line for line in output.splitlines() if '"@level":"error"' in line
             or '"status":"fail"' in line or '"status":"error"' in line]
    return "\n".join(lines[-20:]) or output[-3000:]


# ---- The one-VPC rule, on a real plan ----------------------------------------------------------


@pytest.mark.slow
def test_tagged_subnets_in_two_vpcs_are_refused_at_plan(tf_tools, tmp_path):
    """A plan of the us-east-1 root against the embedded AWS stack, with worker-tagged subnets in
    two VPCs: it stops, naming both VPCs and saying what to do."""
    from tools.lab.embedded_aws import TlsEmbeddedAws
    from tools.lab.exceptions import TerraformFailed
    from tools.lab.terraform_local import LocalApply

    with TlsEmbeddedAws(tmp_path / "tls") as aws:
        local = LocalApply(tf_tools, aws, tmp_path)
        first = local.add_worker_network("10.50.0.0/16")
        second = local.add_worker_network("10.51.0.0/16", subnets=1)
        try:
            local.prepare()
            with pytest.raises(TerraformFailed) as refused:
                local.plan()
        finally:
            local.remove_network(first)
            local.remove_network(second)
    message = " ".join(refused.value.output.split())  # the CLI wraps long lines
    vpcs = ", ".join(sorted([first.vpc_id, second.vpc_id]))
    assert "Error: Resource precondition failed" in message
    assert f"The subnets tagged modfleet:tier=worker lie in 2 VPCs ({vpcs})" in message
    assert "Set worker_vpc_id in terraform.tfvars to the VPC to use" in message
