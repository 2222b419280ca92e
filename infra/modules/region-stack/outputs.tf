################################################################################
# What operators and `modfleet` commands need
################################################################################

output "queue_url" {
  description = "URL of the work queue (MODFLEET_QUEUE_URL; `modfleet enqueue`, `modfleet status`)."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "ARN of the work queue."
  value       = aws_sqs_queue.this.arn
}

output "queue_visibility_timeout_s" {
  description = "The queue's visibility timeout: the worker's processing deadline plus the margin."
  value       = local.queue_visibility_timeout_s
}

output "dlq_url" {
  description = "URL of the dead-letter queue (MODFLEET_DLQ_URL; `modfleet replay-dlq`)."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "verdict_topic_arn" {
  description = "ARN of the verdict topic (MODFLEET_TOPIC_ARN); subscribe consumers here."
  value       = aws_sns_topic.verdicts.arn
}

output "alarm_topic_arn" {
  description = "ARN of the alarm topic; subscribe the on-call pager here."
  value       = aws_sns_topic.alarms.arn
}

output "upload_bucket" {
  description = "Name of the upload bucket; objects with a video suffix are moderated."
  value       = aws_s3_bucket.uploads.id
}

output "upload_bucket_arn" {
  description = "ARN of the upload bucket."
  value       = aws_s3_bucket.uploads.arn
}

output "autoscaling_group_name" {
  description = "Name of the worker Auto Scaling group (scaling, instance refresh, drain)."
  value       = aws_autoscaling_group.this.name
}

output "launch_template_id" {
  description = "ID of the worker launch template."
  value       = aws_launch_template.this.id
}

output "launch_template_version" {
  description = "Latest version of the worker launch template (one per model version or worker change)."
  value       = aws_launch_template.this.latest_version
}

output "drain_hook_name" {
  description = "Name of the termination lifecycle hook that drains a worker."
  value       = local.drain_hook_name
}

output "worker_role_arn" {
  description = "ARN of the workers' IAM role."
  value       = aws_iam_role.worker.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the workers."
  value       = aws_cloudwatch_log_group.worker.name
}

output "kms_key_arn" {
  description = "ARN of the stack's KMS key (uploads, queues, topics, logs, verdict cache)."
  value       = aws_kms_key.this.arn
}

output "worker_environment" {
  description = "The MODFLEET_* variables the worker service runs with."
  value       = local.worker_environment
}

output "verdict_table_name" {
  description = "Name of the verdict cache table (MODFLEET_VERDICT_TABLE)."
  value       = aws_dynamodb_table.verdicts.name
}

output "verdict_table_arn" {
  description = "ARN of the verdict cache table."
  value       = aws_dynamodb_table.verdicts.arn
}

output "records_bucket" {
  description = "Name of the records bucket (MODFLEET_RECORDS_BUCKET): evidence frames and hash lists."
  value       = aws_s3_bucket.records.id
}

output "records_bucket_arn" {
  description = "ARN of the records bucket."
  value       = aws_s3_bucket.records.arn
}

output "evidence_prefix" {
  description = "Key prefix of the evidence frames in the records bucket."
  value       = local.evidence_prefix
}

output "hashlist_prefix" {
  description = "Key prefix of the known-content hash lists in the records bucket (hashlists/<list>.json)."
  value       = local.hashlist_prefix
}

output "evidence_kms_key_arn" {
  description = "ARN of the records bucket's own key: grant reviewers kms:Decrypt on it to read evidence."
  value       = aws_kms_key.evidence.arn
}

output "stack_parameter_prefix" {
  description = "SSM path of the stack's String parameters (queue-url, dlq-url, topic-arn, ...), what `modfleet --stack` reads."
  value       = local.stack_parameter_prefix
}

output "stack_parameters" {
  description = "The stack's SSM parameters, name -> value."
  value       = { for key, parameter in aws_ssm_parameter.stack : parameter.name => parameter.insecure_value }
}

output "dashboard_name" {
  description = "Name of the stack's CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "The alarms that notify the alarm topic, each naming its runbook step."
  value       = [for alarm in local.paging_alarms : alarm.alarm_name]
}

output "settings" {
  description = "The object inputs as the module took them, defaults filled in (the region roots refuse keys these do not have)."
  value = {
    worker          = var.worker
    model_artifacts = var.model_artifacts
    bucket          = var.bucket
    queue           = var.queue
    fleet           = var.fleet
    alarms          = var.alarms
    records         = var.records
    verdict_cache   = var.verdict_cache
  }
}
