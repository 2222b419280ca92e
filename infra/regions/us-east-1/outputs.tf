output "queue_url" {
  description = "Work queue URL."
  value       = module.stack.queue_url
}

output "dlq_url" {
  description = "Dead-letter queue URL."
  value       = module.stack.dlq_url
}

output "verdict_topic_arn" {
  description = "Verdict topic ARN."
  value       = module.stack.verdict_topic_arn
}

output "alarm_topic_arn" {
  description = "Alarm topic ARN."
  value       = module.stack.alarm_topic_arn
}

output "upload_bucket" {
  description = "Upload bucket name."
  value       = module.stack.upload_bucket
}

output "autoscaling_group_name" {
  description = "Worker Auto Scaling group name."
  value       = module.stack.autoscaling_group_name
}

output "drain_hook_name" {
  description = "Termination lifecycle hook name."
  value       = module.stack.drain_hook_name
}

output "launch_template_version" {
  description = "Latest worker launch template version."
  value       = module.stack.launch_template_version
}

output "log_group_name" {
  description = "Worker log group."
  value       = module.stack.log_group_name
}

output "worker_environment" {
  description = "MODFLEET_* variables of the worker service."
  value       = module.stack.worker_environment
}

output "worker_vpc_id" {
  description = "VPC of the worker subnets."
  value       = data.aws_vpc.workers.id
}

output "worker_subnet_ids" {
  description = "Subnets of the worker Auto Scaling group."
  value       = local.worker_subnet_ids
}
