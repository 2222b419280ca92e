# Every variable validation and precondition of the region-stack module refusing bad input
# (plans only, against a mocked AWS provider). tests/infra checks that each check has a case.

mock_provider "aws" {
  source = "../../tests/mocks"
}

variables {
  name = "modfleet-test"

  model_artifacts = {
    bucket  = "modfleet-models-test"
    prefix  = "compiled/qwen2-vl"
    version = "2026-11-01"
  }

  fleet = {
    vpc_id     = "vpc-0aaaaaaaaaaaaaaa1"
    subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
  }
}

################################################################################
# Input checks: every validation and precondition refuses bad input
################################################################################

run "rejects_a_name_aws_would_refuse" {
  command = plan

  variables {
    name = "Modfleet_Test"
  }

  expect_failures = [var.name]
}

run "rejects_a_heartbeat_not_below_the_visibility_timeout" {
  command = plan

  variables {
    worker = {
      heartbeat_interval_s = 300
      visibility_timeout_s = 300
    }
  }

  expect_failures = [var.worker]
}

run "rejects_a_processing_deadline_beyond_the_sqs_limit" {
  command = plan

  variables {
    worker = {
      processing_deadline_s = 43201
    }
  }

  expect_failures = [var.worker]
}

run "rejects_a_stop_margin_under_ten_seconds" {
  command = plan

  variables {
    worker = {
      stop_margin_s = 5
    }
  }

  expect_failures = [var.worker]
}

run "rejects_a_malformed_memory_max" {
  command = plan

  variables {
    worker = {
      memory_max = "90 percent"
    }
  }

  expect_failures = [var.worker]
}

run "rejects_extra_environment_outside_modfleet" {
  command = plan

  variables {
    worker = {
      extra_environment = {
        LD_PRELOAD = "/tmp/x.so"
      }
    }
  }

  expect_failures = [var.worker]
}

run "rejects_a_worker_version_that_is_no_release" {
  command = plan

  variables {
    worker = {
      version = "latest; rm -rf /"
    }
  }

  expect_failures = [var.worker]
}

run "rejects_a_wheelhouse_prefix_with_a_leading_slash" {
  command = plan

  variables {
    worker = {
      wheelhouse_prefix = "/wheelhouse"
    }
  }

  expect_failures = [var.worker]
}

run "rejects_a_relative_neuron_venv" {
  command = plan

  variables {
    worker = {
      neuron_venv = "aws_neuronx_venv_pytorch_2_7_transformers"
    }
  }

  expect_failures = [var.worker]
}

run "rejects_video_suffixes_without_a_dot" {
  command = plan

  variables {
    bucket = {
      video_suffixes = ["mp4"]
    }
  }

  expect_failures = [var.bucket]
}

run "rejects_an_empty_suffix_list" {
  command = plan

  variables {
    bucket = {
      video_suffixes = []
    }
  }

  expect_failures = [var.bucket]
}

run "rejects_a_max_receive_count_of_zero" {
  command = plan

  variables {
    queue = {
      max_receive_count = 0
    }
  }

  expect_failures = [var.queue]
}

run "rejects_a_negative_visibility_margin" {
  command = plan

  variables {
    queue = {
      visibility_margin_s = -1
    }
  }

  expect_failures = [var.queue]
}

run "rejects_min_size_above_max_size" {
  command = plan

  variables {
    fleet = {
      vpc_id     = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1"]
      min_size   = 5
      max_size   = 2
    }
  }

  expect_failures = [var.fleet]
}

run "rejects_instance_types_without_inferentia2" {
  command = plan

  variables {
    fleet = {
      vpc_id         = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids     = ["subnet-0aaaaaaaaaaaaaaa1"]
      instance_types = ["inf2.xlarge", "g5.xlarge"]
    }
  }

  expect_failures = [var.fleet]
}

run "rejects_an_empty_subnet_list" {
  command = plan

  variables {
    fleet = {
      vpc_id     = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids = []
    }
  }

  expect_failures = [var.fleet]
}

run "rejects_a_neuron_sdk_release_that_is_not_x_y_z" {
  command = plan

  variables {
    fleet = {
      vpc_id             = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids         = ["subnet-0aaaaaaaaaaaaaaa1"]
      neuron_sdk_release = "2.25"
    }
  }

  expect_failures = [var.fleet]
}

run "rejects_a_malformed_ami_id" {
  command = plan

  variables {
    fleet = {
      vpc_id     = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1"]
      ami_id     = "ubuntu-22.04"
    }
  }

  expect_failures = [var.fleet]
}

run "rejects_a_latest_ssm_parameter" {
  command = plan

  variables {
    fleet = {
      vpc_id            = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids        = ["subnet-0aaaaaaaaaaaaaaa1"]
      ami_ssm_parameter = "/aws/service/neuron/dlami/multi-framework/ubuntu-22.04/latest/image_id"
    }
  }

  expect_failures = [var.fleet]
}

run "rejects_both_an_ami_id_and_an_ssm_parameter" {
  command = plan

  variables {
    fleet = {
      vpc_id            = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids        = ["subnet-0aaaaaaaaaaaaaaa1"]
      ami_id            = "ami-0fedcba9876543210"
      ami_ssm_parameter = "/modfleet/dlami/neuron-2.25.0"
    }
  }

  expect_failures = [var.fleet]
}

run "refuses_replicas_that_do_not_fit_the_neuron_cores" {
  command = plan

  variables {
    worker = {
      replicas  = 2
      tp_degree = 2
    }
  }

  expect_failures = [aws_launch_template.this]
}

run "rejects_an_error_rate_above_100_percent" {
  command = plan

  variables {
    alarms = {
      error_rate_percent = 150
    }
  }

  expect_failures = [var.alarms]
}

run "rejects_an_alarm_period_cloudwatch_refuses" {
  command = plan

  variables {
    alarms = {
      period_s = 45
    }
  }

  expect_failures = [var.alarms]
}

run "rejects_a_stall_alarm_of_one_minute" {
  command = plan

  variables {
    alarms = {
      stalled_minutes = 1
    }
  }

  expect_failures = [var.alarms]
}

run "rejects_a_fractional_number_of_alarm_periods" {
  command = plan

  variables {
    alarms = {
      error_rate_periods = 2.5
    }
  }

  expect_failures = [var.alarms]
}

run "rejects_evidence_that_expires_at_once" {
  command = plan

  variables {
    records = {
      evidence_expiration_days = 0
    }
  }

  expect_failures = [var.records]
}

run "refuses_a_stall_alarm_shorter_than_waking_from_zero" {
  command = plan

  variables {
    alarms = {
      stalled_minutes = 10
    }
  }

  expect_failures = [aws_cloudwatch_metric_alarm.backlog_without_verdicts]
}

# Last: where this one is broken (no failure where one is expected), the runs after it are skipped.
run "refuses_an_ami_of_another_neuron_sdk_release" {
  command = plan

  variables {
    fleet = {
      vpc_id     = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1"]
      ami_id     = "ami-0fedcba9876543210"
    }
  }

  override_data {
    target = data.aws_ami.neuron
    values = {
      name        = "Deep Learning AMI Neuron (Ubuntu 24.04) 20251120"
      description = "Deep Learning AMI Neuron (Ubuntu 24.04), Neuron SDK 2.26.1 (test stand-in)"
    }
  }

  expect_failures = [data.aws_ami.neuron]
}
