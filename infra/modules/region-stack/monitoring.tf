################################################################################
# Dashboard and the alarms on the worker's own metrics
################################################################################

# The worker's metrics (CloudWatch embedded metric format, namespace modfleet): `Videos` per
# verdict with the dimension sets [], [Status], [Decision] and [Status, Decision]; `PublishLatency`
# and `PublishFailures` with []. A query names exactly one dimension set.
locals {
  metrics_namespace = "modfleet"
  dashboard_name    = "${var.name}-${local.region}"
  period_s          = var.alarms.period_s

  sqs_queue = ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.this.name]
  sqs_dlq   = ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dlq.name]

  # Each widget: title, then metrics in CloudWatch's dashboard form. 2 per row, 12 x 6 each.
  dashboard_widgets = [
    {
      title = "Queue: visible and in flight"
      stat  = "Maximum"
      metrics = [
        concat(local.sqs_queue, [{ label = "Visible" }]),
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws_sqs_queue.this.name, { label = "In flight" }],
      ]
    },
    {
      title = "Oldest message age (s)"
      stat  = "Maximum"
      metrics = [
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.this.name, { label = "Oldest message" }],
      ]
    },
    {
      title = "Verdicts per minute by decision"
      stat  = "Sum"
      metrics = [
        for decision in ["allow", "review", "block"] :
        [local.metrics_namespace, "Videos", "Decision", decision, { label = decision }]
      ]
    },
    {
      title = "Error verdicts"
      stat  = "Sum"
      metrics = [
        [local.metrics_namespace, "Videos", "Status", "error", { id = "errors", label = "Error verdicts" }],
        [local.metrics_namespace, "Videos", { id = "videos", label = "All verdicts", visible = false }],
        [{ id = "error_rate", expression = "100 * FILL(errors, 0) / videos", label = "Error verdicts (%)", yAxis = "right" }],
      ]
    },
    {
      title = "Publish latency (ms) and failures"
      stat  = "Average"
      metrics = [
        [local.metrics_namespace, "PublishLatency", { stat = "p50", label = "p50" }],
        [local.metrics_namespace, "PublishLatency", { stat = "p99", label = "p99" }],
        [local.metrics_namespace, "PublishFailures", { stat = "Sum", label = "Failed publish attempts", yAxis = "right" }],
      ]
    },
    {
      title = "Dead-letter queue"
      stat  = "Maximum"
      metrics = [
        concat(local.sqs_dlq, [{ label = "Dead letters visible" }]),
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws_sqs_queue.dlq.name, { label = "Dead letters held" }],
      ]
    },
    {
      title = "Instances"
      stat  = "Maximum"
      metrics = [
        for metric in ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances"] :
        ["AWS/AutoScaling", metric, "AutoScalingGroupName", aws_autoscaling_group.this.name, { label = trimprefix(metric, "Group") }]
      ]
    },
  ]

  paging_alarms = [
    aws_cloudwatch_metric_alarm.dlq_not_empty,
    aws_cloudwatch_metric_alarm.oldest_message_age,
    aws_cloudwatch_metric_alarm.error_verdicts,
    aws_cloudwatch_metric_alarm.publish_failures,
    aws_cloudwatch_metric_alarm.backlog_without_verdicts,
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({
    widgets = concat(
      [
        for i, widget in local.dashboard_widgets : {
          type   = "metric"
          x      = (i % 2) * 12
          y      = floor(i / 2) * 6
          width  = 12
          height = 6
          properties = {
            title   = widget.title
            region  = local.region
            view    = "timeSeries"
            stacked = false
            period  = local.period_s
            stat    = widget.stat
            metrics = widget.metrics
          }
        }
      ],
      [
        {
          type   = "alarm"
          x      = (length(local.dashboard_widgets) % 2) * 12
          y      = floor(length(local.dashboard_widgets) / 2) * 6
          width  = 12
          height = 6
          properties = {
            title  = "Alarms (runbook: infra/README.md)"
            alarms = [for alarm in local.paging_alarms : alarm.arn]
          }
        }
      ],
    )
  })
}

# R3: error verdicts above a share of all verdicts, in periods with enough verdicts to tell.
resource "aws_cloudwatch_metric_alarm" "error_verdicts" {
  alarm_name          = "${var.name}-error-verdicts"
  alarm_description   = "More than ${var.alarms.error_rate_percent}% of verdicts are errors (periods of at least ${var.alarms.error_rate_min_videos} verdicts). Runbook step R3 (infra/README.md, Runbook)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarms.error_rate_percent
  evaluation_periods  = var.alarms.error_rate_periods
  datapoints_to_alarm = var.alarms.error_rate_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags

  metric_query {
    id = "errors"

    metric {
      namespace   = local.metrics_namespace
      metric_name = "Videos"
      period      = local.period_s
      stat        = "Sum"
      dimensions  = { Status = "error" }
    }
  }

  metric_query {
    id = "videos"

    metric {
      namespace   = local.metrics_namespace
      metric_name = "Videos"
      period      = local.period_s
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "error_rate"
    expression  = "IF(FILL(videos, 0) >= ${var.alarms.error_rate_min_videos}, 100 * FILL(errors, 0) / FILL(videos, 1), 0)"
    label       = "Error verdicts (% of verdicts)"
    return_data = true
  }
}

# R4: SNS publish attempts fail (each failed attempt counts once; the worker retries them).
resource "aws_cloudwatch_metric_alarm" "publish_failures" {
  alarm_name          = "${var.name}-publish-failures"
  alarm_description   = "Verdict publishes to SNS fail: more than ${var.alarms.publish_failures} failed attempts per ${local.period_s} s for ${var.alarms.publish_failure_periods} periods. Runbook step R4 (infra/README.md, Runbook)."
  namespace           = local.metrics_namespace
  metric_name         = "PublishFailures"
  statistic           = "Sum"
  period              = local.period_s
  evaluation_periods  = var.alarms.publish_failure_periods
  datapoints_to_alarm = var.alarms.publish_failure_periods
  threshold           = var.alarms.publish_failures
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

# R5: uploads wait and no verdict comes: the fleet is stuck, crashing, or not there. A minute
# counts when messages were visible all minute long and the worker's Videos metric stayed empty.
resource "aws_cloudwatch_metric_alarm" "backlog_without_verdicts" {
  alarm_name          = "${var.name}-backlog-without-verdicts"
  alarm_description   = "Messages wait on the queue and no verdict came for ${var.alarms.stalled_minutes} minutes. Runbook step R5 (infra/README.md, Runbook)."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = var.alarms.stalled_minutes
  datapoints_to_alarm = var.alarms.stalled_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags

  metric_query {
    id = "visible"

    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      period      = 60
      stat        = "Minimum"
      dimensions  = { QueueName = aws_sqs_queue.this.name }
    }
  }

  metric_query {
    id = "verdicts"

    metric {
      namespace   = local.metrics_namespace
      metric_name = "Videos"
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id          = "stalled"
    expression  = "IF(FILL(visible, 0) > 0 AND FILL(verdicts, 0) == 0, 1, 0)"
    label       = "Backlog and no verdict this minute"
    return_data = true
  }

  lifecycle {
    precondition {
      condition     = var.fleet.min_size > 0 || var.alarms.stalled_minutes * 60 > var.fleet.instance_warmup_s
      error_message = "alarms.stalled_minutes (${var.alarms.stalled_minutes}) must be longer than fleet.instance_warmup_s (${var.fleet.instance_warmup_s} s) while fleet.min_size is 0: waking the fleet from zero takes that long with no verdict, and would page every time."
    }
  }
}
