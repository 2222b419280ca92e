# The region-stack module planned and applied against a mocked AWS provider (no account, no
# network): what the stack wires together, and every input check refusing bad input.
# Run: terraform init -backend=false && terraform test (tests/infra does it with the offline mirror).

mock_provider "aws" {
  source = "../../tests/mocks"
}

# Distinct, well-formed ARNs for the two queues and two topics, so that a wrong reference shows.
override_resource {
  target = aws_sqs_queue.this
  values = {
    arn = "arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos"
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos"
  }
}

override_resource {
  target = aws_sqs_queue.dlq
  values = {
    arn = "arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos-dlq"
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos-dlq"
  }
}

override_resource {
  target = aws_sns_topic.verdicts
  values = {
    arn = "arn:aws:sns:us-east-1:123456789012:modfleet-test-verdicts"
  }
}

override_resource {
  target = aws_sns_topic.alarms
  values = {
    arn = "arn:aws:sns:us-east-1:123456789012:modfleet-test-alarms"
  }
}

override_resource {
  target = aws_autoscaling_policy.wake_from_zero
  values = {
    arn = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:00000000-0000-0000-0000-000000000001:autoScalingGroupName/modfleet-test-workers:policyName/modfleet-test-wake-from-zero"
  }
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
# What the stack wires together
################################################################################

run "notifications_cover_each_video_suffix_in_both_cases" {
  command = apply

  assert {
    condition = toset([for q in aws_s3_bucket_notification.uploads.queue : q.filter_suffix]) == toset([
      ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi", ".MP4", ".MOV", ".MKV", ".WEBM", ".M4V", ".AVI",
    ])
    error_message = "One notification per video suffix, lower and upper case."
  }

  assert {
    condition = alltrue([
      for q in aws_s3_bucket_notification.uploads.queue :
      q.queue_arn == aws_sqs_queue.this.arn && q.events == toset(["s3:ObjectCreated:*"]) && q.filter_prefix == null
    ])
    error_message = "Every notification sends s3:ObjectCreated:* to the work queue, for any key."
  }

  assert {
    condition     = aws_s3_bucket_notification.uploads.bucket == aws_s3_bucket.uploads.id
    error_message = "The notifications belong to the upload bucket."
  }
}

run "key_prefix_and_custom_suffixes_narrow_the_notifications" {
  command = plan

  variables {
    bucket = {
      key_prefix     = "uploads/"
      video_suffixes = [".mp4", ".mov"]
    }
  }

  assert {
    condition     = length(aws_s3_bucket_notification.uploads.queue) == 4
    error_message = "Two suffixes give four notifications (.mp4 .mov .MP4 .MOV)."
  }

  assert {
    condition     = alltrue([for q in aws_s3_bucket_notification.uploads.queue : q.filter_prefix == "uploads/"])
    error_message = "bucket.key_prefix filters every notification."
  }
}

run "redrive_policy_sends_to_the_dead_letter_queue" {
  command = apply

  variables {
    queue = {
      max_receive_count = 7
    }
  }

  assert {
    condition = jsondecode(aws_sqs_queue.this.redrive_policy) == {
      deadLetterTargetArn = "arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos-dlq"
      maxReceiveCount     = 7
    }
    error_message = "The queue redrives to its DLQ after queue.max_receive_count receives."
  }

  assert {
    condition = jsondecode(aws_sqs_queue_redrive_allow_policy.dlq.redrive_allow_policy) == {
      redrivePermission = "byQueue"
      sourceQueueArns   = ["arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos"]
    }
    error_message = "Only the stack's queue may redrive into the DLQ."
  }

  assert {
    condition     = aws_sqs_queue_redrive_allow_policy.dlq.queue_url == aws_sqs_queue.dlq.id
    error_message = "The redrive allow policy is set on the DLQ."
  }

  assert {
    condition     = aws_sqs_queue.this.visibility_timeout_seconds == 960 && aws_sqs_queue.this.receive_wait_time_seconds == 20
    error_message = "Queue visibility = processing deadline (900) + margin (60); 20 s long polling."
  }

  assert {
    condition     = aws_sqs_queue.dlq.message_retention_seconds == 1209600
    error_message = "The DLQ keeps messages 14 days."
  }
}

run "drain_lifecycle_hook_outlasts_the_workers_stop" {
  command = apply

  assert {
    condition     = one(aws_autoscaling_group.this.initial_lifecycle_hook).lifecycle_transition == "autoscaling:EC2_INSTANCE_TERMINATING"
    error_message = "The drain hook holds terminating instances."
  }

  assert {
    condition     = one(aws_autoscaling_group.this.initial_lifecycle_hook).heartbeat_timeout == 150
    error_message = "Hook timeout = shutdown deadline (60) + stop margin (30) + 60."
  }

  assert {
    condition = (
      one(aws_autoscaling_group.this.initial_lifecycle_hook).name == output.drain_hook_name &&
      one(aws_autoscaling_group.this.initial_lifecycle_hook).default_result == "CONTINUE"
    )
    error_message = "The hook is the one the drain script completes, and continues on timeout."
  }

  assert {
    condition     = strcontains(base64decode(aws_launch_template.this.user_data), "--lifecycle-hook-name \"drain-worker\"")
    error_message = "The instance's drain script completes that hook."
  }
}

run "scaling_policies_track_backlog_per_instance_and_wake_from_zero" {
  command = apply

  variables {
    fleet = {
      vpc_id               = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids           = ["subnet-0aaaaaaaaaaaaaaa1"]
      backlog_per_instance = 30
    }
  }

  assert {
    condition     = aws_autoscaling_policy.backlog.policy_type == "TargetTrackingScaling" && one(aws_autoscaling_policy.backlog.target_tracking_configuration).target_value == 30
    error_message = "Target tracking on fleet.backlog_per_instance."
  }

  assert {
    condition = [
      for m in one(one(aws_autoscaling_policy.backlog.target_tracking_configuration).customized_metric_specification).metrics :
      m.expression if m.return_data
    ] == ["visible / in_service"]
    error_message = "The tracked metric is visible messages per in-service instance."
  }

  assert {
    condition     = aws_autoscaling_policy.wake_from_zero.policy_type == "StepScaling" && one(aws_autoscaling_policy.wake_from_zero.step_adjustment).scaling_adjustment == 1
    error_message = "The wake-from-zero policy adds one instance."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.wake_from_zero.alarm_actions == toset([aws_autoscaling_policy.wake_from_zero.arn])
    error_message = "The wake-from-zero alarm triggers the wake-from-zero policy."
  }

  assert {
    condition     = aws_autoscaling_group.this.min_size == 0 && aws_autoscaling_group.this.vpc_zone_identifier == toset(["subnet-0aaaaaaaaaaaaaaa1"])
    error_message = "The group may scale to zero, in the given subnets."
  }
}

run "launch_template_requires_imdsv2_and_encrypts_the_root_volume" {
  command = apply

  assert {
    condition = (
      aws_launch_template.this.metadata_options[0].http_tokens == "required" &&
      aws_launch_template.this.metadata_options[0].http_put_response_hop_limit == 1 &&
      aws_launch_template.this.metadata_options[0].http_endpoint == "enabled"
    )
    error_message = "IMDSv2 only, hop limit 1, endpoint enabled (the drain script reads it)."
  }

  assert {
    condition     = aws_launch_template.this.block_device_mappings[0].ebs[0].encrypted == "true" && aws_launch_template.this.block_device_mappings[0].device_name == "/dev/sda1"
    error_message = "The AMI's root volume is encrypted."
  }

  assert {
    condition     = aws_launch_template.this.network_interfaces[0].associate_public_ip_address == "false"
    error_message = "No public IP."
  }

  assert {
    condition     = aws_launch_template.this.image_id == data.aws_ami.neuron.id
    error_message = "The image is the DLAMI the lookup found."
  }
}

run "default_ami_is_the_pinned_releases_dlami" {
  command = plan

  assert {
    condition = (
      data.aws_ami.neuron.owners == tolist(["amazon"]) && data.aws_ami.neuron.most_recent &&
      { for f in data.aws_ami.neuron.filter : f.name => f.values } == {
        name        = toset(["Deep Learning AMI Neuron (Ubuntu 22.04)*"])
        description = toset(["*Neuron SDK 2.25.0*"])
      }
    )
    error_message = "By default: the newest amazon-owned multi-framework Ubuntu 22.04 DLAMI whose description names Neuron SDK 2.25.0."
  }

  assert {
    condition     = length(data.aws_ssm_parameter.neuron_ami) == 0
    error_message = "No SSM parameter is read by default (the DLAMI parameters only name the latest image)."
  }
}

run "another_release_changes_the_description_filter" {
  command = plan

  variables {
    fleet = {
      vpc_id             = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids         = ["subnet-0aaaaaaaaaaaaaaa1"]
      neuron_sdk_release = "2.24.0"
    }
  }

  override_data {
    target = data.aws_ami.neuron
    values = {
      description = "Deep Learning AMI Neuron (Ubuntu 22.04), Neuron SDK 2.24.0 (test stand-in)"
    }
  }

  assert {
    condition     = [for f in data.aws_ami.neuron.filter : f.values if f.name == "description"] == [toset(["*Neuron SDK 2.24.0*"])]
    error_message = "fleet.neuron_sdk_release selects the DLAMI by description."
  }
}

run "an_exact_ami_id_overrides_the_lookup" {
  command = plan

  variables {
    fleet = {
      vpc_id     = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids = ["subnet-0aaaaaaaaaaaaaaa1"]
      ami_id     = "ami-0fedcba9876543210"
    }
  }

  assert {
    condition     = [for f in data.aws_ami.neuron.filter : f.values] == [toset(["ami-0fedcba9876543210"])] && data.aws_ami.neuron.owners == null
    error_message = "fleet.ami_id is looked up by image ID alone (it may be a copy the account owns)."
  }
}

run "an_ssm_parameter_overrides_the_lookup" {
  command = plan

  variables {
    fleet = {
      vpc_id            = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids        = ["subnet-0aaaaaaaaaaaaaaa1"]
      ami_ssm_parameter = "/modfleet/dlami/neuron-2.25.0"
    }
  }

  override_data {
    target = data.aws_ssm_parameter.neuron_ami[0]
    values = {
      insecure_value = "ami-0abcdefabcdefabcd"
    }
  }

  assert {
    condition     = data.aws_ssm_parameter.neuron_ami[0].name == "/modfleet/dlami/neuron-2.25.0"
    error_message = "fleet.ami_ssm_parameter is read."
  }

  assert {
    condition     = [for f in data.aws_ami.neuron.filter : f.values] == [toset(["ami-0abcdefabcdefabcd"])]
    error_message = "The image ID the parameter holds is the one looked up."
  }
}

run "user_data_installs_from_the_wheelhouse_into_the_dlamis_neuron_venv" {
  command = apply

  variables {
    worker = {
      version = "0.2.0"
    }
  }

  assert {
    condition = alltrue([for text in [
      "ExecStart=/opt/aws_neuronx_venv_pytorch_2_7_transformers/bin/modfleet worker",
      "venv=\"/opt/aws_neuronx_venv_pytorch_2_7_transformers\"",
      "\"s3://modfleet-models-test/wheelhouse/0.2.0/\" /opt/modfleet/wheelhouse",
      "--no-index --only-binary=:all: --find-links /opt/modfleet/wheelhouse",
      "--constraint /opt/modfleet/dlami-packages.txt \"modfleet==0.2.0\"",
      "/opt/modfleet/bin/install-worker && systemctl enable --now modfleet-worker.service",
    ] : strcontains(base64decode(aws_launch_template.this.user_data), text)])
    error_message = "modfleet comes from the versioned wheelhouse, without an index, into the DLAMI's Neuron venv, which the unit runs."
  }

  assert {
    condition     = !strcontains(base64decode(aws_launch_template.this.user_data), "index-url")
    error_message = "No package index at boot."
  }
}

run "user_data_runs_a_sandboxed_worker_with_the_stacks_settings" {
  command = apply

  variables {
    worker = {
      memory_max = "80%"
    }
  }

  assert {
    condition = alltrue([for line in [
      "Environment=\"MODFLEET_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos\"",
      "Environment=\"MODFLEET_DLQ_URL=https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos-dlq\"",
      "Environment=\"MODFLEET_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:modfleet-test-verdicts\"",
      "TimeoutStopSec=90",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "PrivateTmp=yes",
      "DeviceAllow=char-neuron rw",
      "SystemCallFilter=@system-service",
      "MemoryMax=80%",
    ] : strcontains(base64decode(aws_launch_template.this.user_data), line)])
    error_message = "The worker unit carries the stack's queue, DLQ and topic, and its sandbox."
  }

  assert {
    condition     = output.worker_environment["MODFLEET_QUEUE_URL"] == aws_sqs_queue.this.url && output.worker_environment["MODFLEET_REGION"] == "us-east-1"
    error_message = "The worker_environment output is what the unit sets."
  }
}
