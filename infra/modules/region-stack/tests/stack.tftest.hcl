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

override_resource {
  target = aws_s3_bucket.uploads
  values = {
    id  = "modfleet-test-uploads-123456789012"
    arn = "arn:aws:s3:::modfleet-test-uploads-123456789012"
  }
}

override_resource {
  target = aws_s3_bucket.records
  values = {
    id  = "modfleet-test-records-us-east-1"
    arn = "arn:aws:s3:::modfleet-test-records-us-east-1"
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
      "Restart=on-failure",
      "KillSignal=SIGTERM",
    ] : strcontains(base64decode(aws_launch_template.this.user_data), line)])
    error_message = "The worker unit carries the stack's queue, DLQ and topic, restarts on failure, stops by SIGTERM, and has its sandbox."
  }

  assert {
    condition = alltrue([
      for name, value in output.worker_environment : strcontains(base64decode(aws_launch_template.this.user_data), "Environment=\"${name}=${value}\"")
    ]) && startswith(base64decode(aws_launch_template.this.user_data), "#cloud-config")
    error_message = "The unit sets every variable of worker_environment (the user data is cloud-init)."
  }

  assert {
    condition     = output.worker_environment["MODFLEET_QUEUE_URL"] == aws_sqs_queue.this.url && output.worker_environment["MODFLEET_REGION"] == "us-east-1"
    error_message = "The worker_environment output is what the unit sets."
  }
}

################################################################################
# Encryption, policies and the group (what checkov does not see through variables)
################################################################################

run "upload_bucket_is_versioned_tls_only_and_encrypted_with_the_stack_key" {
  command = apply

  assert {
    condition = (
      one(aws_s3_bucket_versioning.uploads.versioning_configuration).status == "Enabled" &&
      one(one(aws_s3_bucket_server_side_encryption_configuration.uploads.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms" &&
      one(one(aws_s3_bucket_server_side_encryption_configuration.uploads.rule).apply_server_side_encryption_by_default).kms_master_key_id == aws_kms_key.this.arn
    )
    error_message = "Versioned; SSE-KMS with the stack's key."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.uploads.block_public_acls && aws_s3_bucket_public_access_block.uploads.block_public_policy &&
      aws_s3_bucket_public_access_block.uploads.ignore_public_acls && aws_s3_bucket_public_access_block.uploads.restrict_public_buckets &&
      one(aws_s3_bucket_ownership_controls.uploads.rule).object_ownership == "BucketOwnerEnforced"
    )
    error_message = "All public access is blocked and the bucket owns every object."
  }

  assert {
    condition = [
      for s in data.aws_iam_policy_document.uploads.statement : [s.effect, s.actions, s.resources, [for c in s.condition : [c.test, c.variable, c.values]]]
      ] == [["Deny", toset(["s3:*"]), toset(["arn:aws:s3:::modfleet-test-uploads-123456789012", "arn:aws:s3:::modfleet-test-uploads-123456789012/*"]),
    [["Bool", "aws:SecureTransport", tolist(["false"])]]]]
    error_message = "The bucket policy denies every request without TLS."
  }

  assert {
    condition = (
      [for r in aws_s3_bucket_lifecycle_configuration.uploads.rule : one(r.abort_incomplete_multipart_upload).days_after_initiation if r.id == "abort-incomplete-multipart-uploads" && r.status == "Enabled"] == [1] &&
      [for r in aws_s3_bucket_lifecycle_configuration.uploads.rule : one(r.noncurrent_version_expiration).noncurrent_days if r.id == "expire-noncurrent-versions" && r.status == "Enabled"] == [30] &&
      length(aws_s3_bucket_lifecycle_configuration.uploads.rule) == 2
    )
    error_message = "Lifecycle: abort incomplete multipart uploads after 1 day, expire non-current versions after 30; current objects kept by default."
  }
}

run "only_the_upload_bucket_may_send_to_the_queue" {
  command = apply

  assert {
    condition = [
      for s in data.aws_iam_policy_document.queue.statement : {
        effect     = coalesce(s.effect, "Allow")
        actions    = s.actions
        resources  = s.resources
        principals = [for p in s.principals : [p.type, p.identifiers]]
        conditions = { for c in s.condition : c.variable => [c.test, c.values] }
      }
      ] == [
      {
        effect     = "Allow"
        actions    = toset(["sqs:SendMessage"])
        resources  = toset([aws_sqs_queue.this.arn])
        principals = [["Service", toset(["s3.amazonaws.com"])]]
        conditions = {
          "aws:SourceArn"     = ["ArnEquals", tolist(["arn:aws:s3:::modfleet-test-uploads-123456789012"])]
          "aws:SourceAccount" = ["StringEquals", tolist(["123456789012"])]
        }
      },
      {
        effect     = "Deny"
        actions    = toset(["sqs:*"])
        resources  = toset([aws_sqs_queue.this.arn])
        principals = [["*", toset(["*"])]]
        conditions = { "aws:SecureTransport" = ["Bool", tolist(["false"])] }
      },
    ]
    error_message = "The S3 service may SendMessage for the upload bucket of this account only; no request without TLS."
  }

  assert {
    condition     = aws_sqs_queue_policy.this.queue_url == aws_sqs_queue.this.id
    error_message = "The policy is the work queue's."
  }
}

run "queues_topics_and_logs_use_the_stack_key" {
  command = apply

  assert {
    condition = alltrue([
      for arn in [
        aws_sqs_queue.this.kms_master_key_id, aws_sqs_queue.dlq.kms_master_key_id, aws_sns_topic.verdicts.kms_master_key_id,
        aws_sns_topic.alarms.kms_master_key_id, aws_cloudwatch_log_group.worker.kms_key_id,
      ] : arn == aws_kms_key.this.arn
    ]) && aws_kms_key.this.enable_key_rotation
    error_message = "Both queues, both topics and the log group are encrypted with the stack's rotated key."
  }

  assert {
    condition = (
      aws_sns_topic_policy.verdicts.arn == aws_sns_topic.verdicts.arn && aws_sns_topic_policy.alarms.arn == aws_sns_topic.alarms.arn &&
      [for s in data.aws_iam_policy_document.alarms.statement : [s.actions, [for p in s.principals : [p.type, p.identifiers]]]] == [
        [toset(["sns:Publish"]), [["Service", toset(["cloudwatch.amazonaws.com"])]]]
      ]
    )
    error_message = "Each topic has its policy; CloudWatch (of this account) may publish alarms."
  }

  assert {
    condition = {
      for s in data.aws_iam_policy_document.verdicts.statement : s.sid => [coalesce(s.effect, "Allow"), s.actions, [for p in s.principals : p.identifiers]]
      } == {
      WorkersPublishVerdicts  = ["Allow", toset(["sns:Publish"]), [toset([aws_iam_role.worker.arn])]]
      SubscribersReadVerdicts = ["Allow", toset(["sns:Subscribe", "sns:GetTopicAttributes"]), [toset(["arn:aws:iam::123456789012:root"])]]
      DenyInsecureTransport   = ["Deny", toset(["sns:Publish"]), [toset(["*"])]]
    }
    error_message = "The worker role publishes, this account subscribes, nobody publishes without TLS."
  }

  assert {
    condition     = aws_cloudwatch_log_group.worker.name == "/modfleet/modfleet-test/worker" && aws_cloudwatch_log_group.worker.retention_in_days == 365
    error_message = "The worker's log group, kept a year."
  }
}

run "the_group_follows_the_launch_template_with_inf2_types" {
  command = apply

  assert {
    condition = (
      one(one(one(aws_autoscaling_group.this.mixed_instances_policy).launch_template).launch_template_specification).launch_template_id == aws_launch_template.this.id &&
      one(one(one(aws_autoscaling_group.this.mixed_instances_policy).launch_template).launch_template_specification).version == tostring(aws_launch_template.this.latest_version)
    )
    error_message = "The group runs the launch template's latest version (a new version starts an instance refresh)."
  }

  assert {
    condition     = [for o in one(one(aws_autoscaling_group.this.mixed_instances_policy).launch_template).override : o.instance_type] == ["inf2.xlarge", "inf2.8xlarge"]
    error_message = "The mixed instances policy overrides with fleet.instance_types (Inf2)."
  }

  assert {
    condition = (
      aws_autoscaling_group.this.capacity_rebalance && one(aws_autoscaling_group.this.instance_refresh).strategy == "Rolling" &&
      one(one(aws_autoscaling_group.this.instance_refresh).preferences).min_healthy_percentage == 50 &&
      contains(aws_autoscaling_group.this.enabled_metrics, "GroupInServiceInstances") && contains(aws_autoscaling_group.this.enabled_metrics, "GroupDesiredCapacity")
    )
    error_message = "Capacity rebalancing on, rolling instance refresh at 50 % healthy, group metrics for backlog per instance and the dashboard."
  }
}

run "queue_visibility_and_stop_timeouts_follow_the_workers_deadlines" {
  command = apply

  variables {
    worker = {
      processing_deadline_s = 1800
      shutdown_deadline_s   = 120
    }
    queue = {
      visibility_margin_s = 30
    }
  }

  assert {
    condition     = aws_sqs_queue.this.visibility_timeout_seconds == 1830 && aws_sqs_queue.dlq.visibility_timeout_seconds == 1830
    error_message = "Queue visibility = worker.processing_deadline_s + queue.visibility_margin_s."
  }

  assert {
    condition = (
      strcontains(base64decode(aws_launch_template.this.user_data), "TimeoutStopSec=150") &&
      one(aws_autoscaling_group.this.initial_lifecycle_hook).heartbeat_timeout == 210 &&
      aws_cloudwatch_metric_alarm.oldest_message_age.threshold == 3600
    )
    error_message = "TimeoutStopSec = shutdown deadline + stop margin; the hook outlasts it by 60 s; the age alarm is at twice the deadline."
  }
}
