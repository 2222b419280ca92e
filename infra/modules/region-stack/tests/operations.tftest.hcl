# What operators and `modfleet` read from a stack, applied against a mocked AWS provider: the SSM
# parameters under /modfleet/<name>/, the region's dashboard, and the alarms with their runbook
# steps (infra/README.md, "Runbook").
# Run: terraform init -backend=false && terraform test (tests/infra does it with the offline mirror).

mock_provider "aws" {
  source = "../../tests/mocks"
}

override_resource {
  target = aws_sqs_queue.this
  values = {
    name = "modfleet-test-videos"
    arn  = "arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos"
    url  = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos"
  }
}

override_resource {
  target = aws_sqs_queue.dlq
  values = {
    name = "modfleet-test-videos-dlq"
    arn  = "arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos-dlq"
    url  = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos-dlq"
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

override_resource {
  target = aws_cloudwatch_metric_alarm.dlq_not_empty
  values = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:modfleet-test-dlq-not-empty"
  }
}

override_resource {
  target = aws_cloudwatch_metric_alarm.oldest_message_age
  values = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:modfleet-test-oldest-message-age"
  }
}

override_resource {
  target = aws_cloudwatch_metric_alarm.error_verdicts
  values = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:modfleet-test-error-verdicts"
  }
}

override_resource {
  target = aws_cloudwatch_metric_alarm.publish_failures
  values = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:modfleet-test-publish-failures"
  }
}

override_resource {
  target = aws_cloudwatch_metric_alarm.backlog_without_verdicts
  values = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:modfleet-test-backlog-without-verdicts"
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
# Stack parameters (infra/README.md, "Stack parameters"): what `modfleet --stack` reads
################################################################################

run "stack_parameters_name_the_stacks_resources_under_its_prefix" {
  command = apply

  assert {
    condition = { for p in aws_ssm_parameter.stack : p.name => p.insecure_value } == {
      "/modfleet/modfleet-test/queue-url"         = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos"
      "/modfleet/modfleet-test/dlq-url"           = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos-dlq"
      "/modfleet/modfleet-test/topic-arn"         = "arn:aws:sns:us-east-1:123456789012:modfleet-test-verdicts"
      "/modfleet/modfleet-test/bucket"            = "modfleet-test-uploads-123456789012"
      "/modfleet/modfleet-test/verdict-table"     = "modfleet-test-verdicts"
      "/modfleet/modfleet-test/records-bucket"    = "modfleet-test-records-us-east-1"
      "/modfleet/modfleet-test/evidence-prefix"   = "evidence/"
      "/modfleet/modfleet-test/hashlist-prefix"   = "hashlists/"
      "/modfleet/modfleet-test/autoscaling-group" = "modfleet-test-workers"
      "/modfleet/modfleet-test/log-group"         = "/modfleet/modfleet-test/worker"
    }
    error_message = "One parameter per name of infra/README.md's stack parameters, under /modfleet/<name>/."
  }

  assert {
    condition     = alltrue([for p in aws_ssm_parameter.stack : p.type == "String"])
    error_message = "String parameters: names and URLs, no secrets, readable without a KMS grant."
  }

  assert {
    condition     = output.stack_parameter_prefix == "/modfleet/modfleet-test/" && length(output.stack_parameters) == 10
    error_message = "The outputs name the prefix and the parameters."
  }
}

################################################################################
# Dashboard
################################################################################

run "one_dashboard_shows_the_queue_the_verdicts_and_the_fleet" {
  command = apply

  assert {
    condition     = aws_cloudwatch_dashboard.this.dashboard_name == "modfleet-test-us-east-1" && output.dashboard_name == "modfleet-test-us-east-1"
    error_message = "One dashboard per region, <name>-<region>."
  }

  assert {
    condition = [for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : w.properties.title] == [
      "Queue: visible and in flight",
      "Oldest message age (s)",
      "Verdicts per minute by decision",
      "Error verdicts",
      "Publish latency (ms) and failures",
      "Dead-letter queue",
      "Instances",
      "Alarms (runbook: infra/README.md)",
    ]
    error_message = "Queue depth and in flight, oldest age, verdicts by decision, errors, publish latency, DLQ, instances, alarms."
  }

  assert {
    condition = {
      for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : w.properties.title => [
        for m in w.properties.metrics : join(" ", [for part in m : part if can(tostring(part))])
      ] if w.type == "metric"
      } == {
      "Queue: visible and in flight" = [
        "AWS/SQS ApproximateNumberOfMessagesVisible QueueName modfleet-test-videos",
        "AWS/SQS ApproximateNumberOfMessagesNotVisible QueueName modfleet-test-videos",
      ]
      "Oldest message age (s)" = ["AWS/SQS ApproximateAgeOfOldestMessage QueueName modfleet-test-videos"]
      "Verdicts per minute by decision" = [
        "modfleet Videos Decision allow", "modfleet Videos Decision review", "modfleet Videos Decision block",
      ]
      "Error verdicts"                    = ["modfleet Videos Status error", "modfleet Videos", ""]
      "Publish latency (ms) and failures" = ["modfleet PublishLatency", "modfleet PublishLatency", "modfleet PublishFailures"]
      "Dead-letter queue" = [
        "AWS/SQS ApproximateNumberOfMessagesVisible QueueName modfleet-test-videos-dlq",
        "AWS/SQS ApproximateNumberOfMessagesNotVisible QueueName modfleet-test-videos-dlq",
      ]
      "Instances" = [
        "AWS/AutoScaling GroupDesiredCapacity AutoScalingGroupName modfleet-test-workers",
        "AWS/AutoScaling GroupInServiceInstances AutoScalingGroupName modfleet-test-workers",
        "AWS/AutoScaling GroupPendingInstances AutoScalingGroupName modfleet-test-workers",
      ]
    }
    error_message = "Each widget reads the stack's own queue, DLQ and group, and the worker's metrics by the dimension sets it emits."
  }

  assert {
    condition = [
      for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : w.properties.metrics[2][0].expression if w.properties.title == "Error verdicts"
    ] == ["100 * FILL(errors, 0) / videos"]
    error_message = "The error widget shows the error share of verdicts."
  }

  assert {
    condition = [
      for w in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : w.properties.alarms if w.type == "alarm"
    ] == [[for name in output.alarm_names : "arn:aws:cloudwatch:us-east-1:123456789012:alarm:${name}"]]
    error_message = "The alarm widget lists the five paging alarms."
  }
}

################################################################################
# Alarms, each with its runbook step
################################################################################

run "every_paging_alarm_names_its_runbook_step_and_notifies_the_alarm_topic" {
  command = apply

  assert {
    condition = output.alarm_names == [
      "modfleet-test-dlq-not-empty", "modfleet-test-oldest-message-age", "modfleet-test-error-verdicts",
      "modfleet-test-publish-failures", "modfleet-test-backlog-without-verdicts",
    ]
    error_message = "Five paging alarms."
  }

  assert {
    condition = [
      for alarm in [
        aws_cloudwatch_metric_alarm.dlq_not_empty, aws_cloudwatch_metric_alarm.oldest_message_age,
        aws_cloudwatch_metric_alarm.error_verdicts, aws_cloudwatch_metric_alarm.publish_failures,
        aws_cloudwatch_metric_alarm.backlog_without_verdicts,
      ] : regex("Runbook step (R[0-9])", alarm.alarm_description)[0]
    ] == ["R1", "R2", "R3", "R4", "R5"]
    error_message = "Each paging alarm's description names its runbook step."
  }

  assert {
    condition = alltrue([
      for step in ["R1", "R2", "R3", "R4", "R5"] : strcontains(file("${path.module}/../../README.md"), "### ${step}. ")
    ])
    error_message = "infra/README.md has a section for each runbook step the alarms name (### R1. ...)."
  }

  assert {
    condition = alltrue([
      for alarm in [
        aws_cloudwatch_metric_alarm.dlq_not_empty, aws_cloudwatch_metric_alarm.oldest_message_age,
        aws_cloudwatch_metric_alarm.error_verdicts, aws_cloudwatch_metric_alarm.publish_failures,
        aws_cloudwatch_metric_alarm.backlog_without_verdicts,
      ] : alarm.alarm_actions == toset([aws_sns_topic.alarms.arn]) && alarm.ok_actions == toset([aws_sns_topic.alarms.arn]) && alarm.treat_missing_data == "notBreaching"
    ])
    error_message = "Every paging alarm notifies the alarm topic when it fires and when it clears; no data is no alarm."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.dlq_not_empty.dimensions == tomap({ QueueName = "modfleet-test-videos-dlq" }) &&
      aws_cloudwatch_metric_alarm.dlq_not_empty.metric_name == "ApproximateNumberOfMessagesVisible" &&
      aws_cloudwatch_metric_alarm.dlq_not_empty.threshold == 0 && aws_cloudwatch_metric_alarm.dlq_not_empty.comparison_operator == "GreaterThanThreshold"
    )
    error_message = "R1 fires on the first visible message of the dead-letter queue."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.oldest_message_age.dimensions == tomap({ QueueName = "modfleet-test-videos" }) &&
      aws_cloudwatch_metric_alarm.oldest_message_age.metric_name == "ApproximateAgeOfOldestMessage" &&
      aws_cloudwatch_metric_alarm.oldest_message_age.threshold == 1800 && aws_cloudwatch_metric_alarm.oldest_message_age.evaluation_periods == 5
    )
    error_message = "R2: the work queue's oldest message above twice the processing deadline (1800 s) for 5 minutes."
  }
}

run "the_error_rate_alarm_divides_error_verdicts_by_all_verdicts" {
  command = apply

  variables {
    alarms = {
      error_rate_percent    = 5
      error_rate_min_videos = 20
      error_rate_periods    = 3
    }
  }

  assert {
    condition = {
      for q in aws_cloudwatch_metric_alarm.error_verdicts.metric_query : q.id => (
        q.expression != null && q.expression != "" ? q.expression :
        join(" ", [one(q.metric).namespace, one(q.metric).metric_name, one(q.metric).stat, one(q.metric).dimensions == null ? "{}" : jsonencode(one(q.metric).dimensions)])
      )
      } == {
      errors     = "modfleet Videos Sum {\"Status\":\"error\"}"
      videos     = "modfleet Videos Sum {}"
      error_rate = "IF(FILL(videos, 0) >= 20, 100 * FILL(errors, 0) / FILL(videos, 1), 0)"
    }
    error_message = "Error verdicts (Status=error) over all verdicts (no dimension), in periods of at least error_rate_min_videos verdicts."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.error_verdicts.threshold == 5 && aws_cloudwatch_metric_alarm.error_verdicts.comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.error_verdicts.evaluation_periods == 3 && aws_cloudwatch_metric_alarm.error_verdicts.datapoints_to_alarm == 3 &&
      [for q in aws_cloudwatch_metric_alarm.error_verdicts.metric_query : q.id if q.return_data == true] == ["error_rate"]
    )
    error_message = "The thresholds come from alarms.error_rate_percent and error_rate_periods."
  }
}

run "the_publish_failure_alarm_counts_failed_attempts" {
  command = apply

  variables {
    alarms = {
      publish_failures        = 2
      publish_failure_periods = 4
      period_s                = 300
    }
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.publish_failures.namespace == "modfleet" && aws_cloudwatch_metric_alarm.publish_failures.metric_name == "PublishFailures" &&
      aws_cloudwatch_metric_alarm.publish_failures.statistic == "Sum" && aws_cloudwatch_metric_alarm.publish_failures.dimensions == null &&
      aws_cloudwatch_metric_alarm.publish_failures.period == 300 && aws_cloudwatch_metric_alarm.publish_failures.threshold == 2 &&
      aws_cloudwatch_metric_alarm.publish_failures.evaluation_periods == 4 && aws_cloudwatch_metric_alarm.publish_failures.datapoints_to_alarm == 4
    )
    error_message = "More than alarms.publish_failures failed publishes per period, for publish_failure_periods periods."
  }
}

run "the_stall_alarm_fires_on_backlog_without_verdicts" {
  command = apply

  variables {
    alarms = {
      stalled_minutes = 20
    }
    fleet = {
      vpc_id            = "vpc-0aaaaaaaaaaaaaaa1"
      subnet_ids        = ["subnet-0aaaaaaaaaaaaaaa1"]
      instance_warmup_s = 600
    }
  }

  assert {
    condition = {
      for q in aws_cloudwatch_metric_alarm.backlog_without_verdicts.metric_query : q.id => (
        q.expression != null && q.expression != "" ? q.expression :
        join(" ", [one(q.metric).namespace, one(q.metric).metric_name, one(q.metric).stat, one(q.metric).dimensions == null ? "{}" : jsonencode(one(q.metric).dimensions)])
      )
      } == {
      visible  = "AWS/SQS ApproximateNumberOfMessagesVisible Minimum {\"QueueName\":\"modfleet-test-videos\"}"
      verdicts = "modfleet Videos Sum {}"
      stalled  = "IF(FILL(visible, 0) > 0 AND FILL(verdicts, 0) == 0, 1, 0)"
    }
    error_message = "A minute counts when the queue held visible messages all minute and no verdict came (FILL: no Videos datapoint is no verdict)."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.backlog_without_verdicts.evaluation_periods == 20 && aws_cloudwatch_metric_alarm.backlog_without_verdicts.datapoints_to_alarm == 20 &&
      aws_cloudwatch_metric_alarm.backlog_without_verdicts.threshold == 1 && aws_cloudwatch_metric_alarm.backlog_without_verdicts.comparison_operator == "GreaterThanOrEqualToThreshold" &&
      strcontains(aws_cloudwatch_metric_alarm.backlog_without_verdicts.alarm_description, "for 20 minutes")
    )
    error_message = "alarms.stalled_minutes one-minute periods in a row."
  }
}
