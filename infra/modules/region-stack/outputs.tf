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
  description = "ARN of the stack's KMS key (uploads, queues, topics, logs)."
  value       = aws_kms_key.this.arn
}

output "worker_environment" {
  description = "The MODFLEET_* variables the worker service runs with."
  value       = local.worker_environment
}
