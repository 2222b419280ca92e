"""The AWS settings as the AWS CLI reads them: flag, MODFLEET_*, AWS_* variables, the profile's
region, the default; bad regions and profiles named with where they came from."""

import re

import pytest

from worker.exceptions import SettingsError
from worker.settings import from_sources


def test_aws_cli_variables_follow_the_modfleet_ones_and_the_flags(tmp_path):
    config = tmp_path / "config"
    config.write_text("[profile ops]\nregion = sa-east-1\n[default]\nregion = ca-central-1\n")
    base = {"AWS_CONFIG_FILE": str(config)}
    assert from_sources({}, base).region == "ca-central-1"  # the default profile's region
    assert from_sources({}, base | {"AWS_PROFILE": "ops"}).region == "sa-east-1"
    assert from_sources({}, base | {"AWS_DEFAULT_REGION": "eu-west-2"}).region == "eu-west-2"
    env = base | {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-2"}
    assert from_sources({}, env).region == "eu-west-1"
    assert from_sources({}, env | {"MODFLEET_REGION": "eu-west-3"}).region == "eu-west-3"
    assert from_sources({"region": "ap-south-1"}, env | {"MODFLEET_REGION": "eu-west-3"}
                        ).region == "ap-south-1"
    assert from_sources({}, {"AWS_ENDPOINT_URL": "http://a"}).endpoint_url == "http://a"
    assert from_sources({}, {"AWS_ENDPOINT_URL": "http://a", "MODFLEET_ENDPOINT_URL": "http://b"}
                        ).endpoint_url == "http://b"
    # A service's own endpoint beats AWS_ENDPOINT_URL: botocore applies both, per service.
    assert from_sources({}, {"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_SQS": "http://q"}
                        ).endpoint_url is None
    assert from_sources({}, base | {"AWS_PROFILE": "ops"}).profile == "ops"


@pytest.mark.parametrize("values, env, message", [
    ({"region": "not_a_region"}, {}, "--region 'not_a_region' is not a region name"),
    ({}, {"AWS_REGION": "us-esat-1"}, "AWS_REGION 'us-esat-1' is not a region botocore knows "
                                      "(did you mean us-east-1?)"),
    ({"profile": "nope"}, {}, "--profile nope: no such profile"),
    ({}, {"AWS_PROFILE": "nope"}, "AWS_PROFILE nope: no such profile"),
])
def test_bad_regions_and_profiles_name_their_source(values, env, message, tmp_path):
    env = {"AWS_CONFIG_FILE": str(tmp_path / "absent"), **env}
    with pytest.raises(SettingsError, match=re.escape(message)):
        from_sources(values, env)


def test_an_unlisted_region_needs_an_endpoint():
    assert from_sources({"region": "xx-lab-1", "endpoint_url": "http://127.0.0.1:1"},
                        {}).region == "xx-lab-1"


def test_a_command_without_aws_flags_ignores_the_aws_variables():
    """compile and synthetic-checkpoint call no AWS: a stale AWS_PROFILE must not stop them."""
    import argparse

    env = {"AWS_PROFILE": "nope", "AWS_REGION": "not_a_region"}
    assert from_sources(argparse.Namespace(batch_size="2"), env).batch_size == 2
    with pytest.raises(SettingsError, match="AWS_PROFILE nope"):
        from_sources(argparse.Namespace(batch_size="2", region=None), env)
