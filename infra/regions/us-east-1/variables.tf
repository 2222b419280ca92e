variable "region" {
  description = "AWS region of this root's stack."
  type        = string
}

variable "name" {
  description = "Name prefix of the stack's resources (see the module)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of the stack."
  type        = map(string)
  default     = {}
}

variable "worker_subnet_tag" {
  description = "Tag that marks the private subnets the workers run in."
  type = object({
    key   = string
    value = string
  })
  default = {
    key   = "modfleet:tier"
    value = "worker"
  }
}

variable "worker_vpc_id" {
  description = "VPC of the worker subnets. Null: the one VPC the tagged subnets share (the plan stops if they lie in several)."
  type        = string
  default     = null

  validation {
    condition     = var.worker_vpc_id == null || can(regex("^vpc-[0-9a-f]+$", var.worker_vpc_id))
    error_message = "worker_vpc_id must be a VPC ID (vpc-...) or null."
  }
}

# The object settings below are typed by the module's variables of the same name (object types
# with optional() defaults: infra/modules/region-stack/variables.tf). They are taken here as they
# are written, because a typed object() drops keys it does not know without a word (Terraform
# 1.11: `queue = { max_recieve_count = 2 }` planned the default 5): the `settings` output
# (outputs.tf) compares the keys written with the module's and stops the plan at a misspelled one.

variable "worker" {
  description = "Worker installation and settings; see the module's variable of the same name. Unknown keys stop the plan."
  type        = any
  default     = {}
}

variable "model_artifacts" {
  description = "Compiled model artifacts (bucket, prefix, version, kms_key_arn); see the module's variable of the same name. Unknown keys stop the plan."
  type        = any
}

variable "bucket" {
  description = "Upload bucket options; see the module's variable of the same name. Unknown keys stop the plan."
  type        = any
  default     = {}
}

variable "queue" {
  description = "Queue and dead-letter queue options; see the module's variable of the same name. Unknown keys stop the plan."
  type        = any
  default     = {}
}

variable "fleet" {
  description = "Auto Scaling group options except vpc_id and subnet_ids, which this root looks up; see the module's variable of the same name. Unknown keys stop the plan."
  type        = any
  default     = {}
}

variable "alarms" {
  description = "Alarm thresholds; see the module's variable of the same name. Unknown keys stop the plan."
  type        = any
  default     = {}
}

variable "records" {
  description = "Records bucket options (evidence expiry, hash list versions); see the module's variable of the same name. Unknown keys stop the plan."
  type        = any
  default     = {}
}

variable "verdict_cache" {
  description = "Verdict cache table options; see the module's variable of the same name. Unknown keys stop the plan."
  type        = any
  default     = {}
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}
