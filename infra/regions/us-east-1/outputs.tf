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

output "verdict_table" {
  description = "Verdict cache table name."
  value       = module.stack.verdict_table_name
}

output "records_bucket" {
  description = "Records bucket name (evidence/, hashlists/)."
  value       = module.stack.records_bucket
}

output "evidence_kms_key_arn" {
  description = "The records bucket's key: reviewers need kms:Decrypt on it to read evidence."
  value       = module.stack.evidence_kms_key_arn
}

output "stack_parameter_prefix" {
  description = "SSM path of the stack's parameters (`modfleet --stack`)."
  value       = module.stack.stack_parameter_prefix
}

output "dashboard_name" {
  description = "CloudWatch dashboard of this region."
  value       = module.stack.dashboard_name
}

output "alarm_names" {
  description = "Alarms that notify the alarm topic (runbook: infra/README.md)."
  value       = module.stack.alarm_names
}

# The settings in effect; the plan stops here at a key the module does not know (variables.tf).
output "settings" {
  description = "The object settings of this region as the module took them, defaults filled in."
  value       = module.stack.settings

  precondition {
    condition     = length(local.unknown_setting_keys) == 0
    error_message = "Unknown settings in terraform.tfvars: ${join("; ", [for name, keys in local.unknown_setting_keys : "${name} has no ${join(", ", keys)} (it takes ${join(", ", local.known_setting_keys[name])})"])}."
  }
}
