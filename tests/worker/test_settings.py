import subprocess
import sys

import pytest

from worker.exceptions import SettingsError
from worker.settings import Settings, decode_limits, env_var_names, from_sources


def test_flags_beat_environment_beat_defaults():
    env = {"MODFLEET_BATCH_SIZE": "8", "MODFLEET_REPLICAS": "3", "MODFLEET_SCREENING": "true",
           "MODFLEET_MODE": "generate"}
    s = from_sources({"batch_size": "2"}, env)
    assert (s.batch_size, s.replicas, s.screening, s.mode) == (2, 3, True, "generate")
    assert s.frames_per_video == Settings().frames_per_video


@pytest.mark.parametrize("values, limit", [
    ({"heartbeat_interval_s": "300", "visibility_timeout_s": "300"}, "must be shorter than"),
    ({"replicas": "0"}, "replicas must be between 1 and 64"),
    ({"max_messages": "11"}, "max-messages must be between 1 and 10"),
    ({"wait_time_s": "21"}, "wait-time-s must be between 0 and 20"),
    ({"frame_size": "100"}, "multiple of 28"),
    ({"cascade": "true"}, "cascade needs screening"),
    ({"backend": "neuron"}, "needs --compiled-dir"),
    ({"batch_size": "eight"}, "expected int"),
    ({"quantize": "int4"}, "must be one of none, int8"),
])
def test_invalid_settings_name_the_limit(values, limit):
    with pytest.raises(SettingsError, match=limit):
        from_sources(values, {})


def test_env_values_are_validated_with_their_source_named():
    with pytest.raises(SettingsError, match="MODFLEET_METRICS: expected true or false"):
        from_sources({}, {"MODFLEET_METRICS": "maybe"})


def test_every_field_has_one_environment_variable():
    names = env_var_names()
    assert "MODFLEET_QUEUE_URL" in names and "MODFLEET_HEARTBEAT_INTERVAL_S" in names
    assert len(names) == len(Settings.__dataclass_fields__)


def test_decode_limits_carry_every_media_setting_the_sampler_reads():
    s = Settings(frames_per_video=4, frame_size=56, max_duration_s=60.0, max_pixels=10**6,
                 decode_deadline_s=7.5)
    limits = decode_limits(s)
    assert (limits.frames, limits.size, limits.max_duration_s, limits.max_pixels,
            limits.deadline_s) == (4, 56, 60.0, 10**6, 7.5)


def test_derived_in_flight_limit_gives_backpressure():
    assert Settings(batch_size=4, replicas=2).in_flight_limit == 16
    assert Settings(batch_size=4, max_in_flight=5).in_flight_limit == 5


def test_worker_cli_refuses_bad_settings_at_start():
    result = subprocess.run(
        [sys.executable, "-m", "tools.ops.cli", "worker", "--queue-url", "http://q", "--topic-arn",
         "arn:t", "--heartbeat-interval-s", "30", "--visibility-timeout-s", "20"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "heartbeat-interval-s (30) must be shorter than visibility-timeout-s (20)" in result.stderr


def test_worker_cli_names_missing_queue():
    result = subprocess.run([sys.executable, "-m", "tools.ops.cli", "worker"], capture_output=True,
                            text=True, timeout=60, env={"PATH": "", "HOME": "/tmp"})
    assert result.returncode == 2
    assert "--queue-url (or MODFLEET_QUEUE_URL)" in result.stderr


def test_reuse_settings_are_checked_at_start():
    for bad in ({"evidence_prefix": "evidence"}, {"near_duplicate_threshold": 200},
                {"verdict_cache_ttl_days": 0}):
        with pytest.raises(SettingsError):
            Settings(**bad)
    assert Settings(verdict_table="t").near_duplicate_reuse == "review_block"
