################################################################################
# General
################################################################################

variable "name" {
  description = "Name prefix of every resource of this stack, unique per account and region (e.g. modfleet-use1)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags (the provider's default_tags apply as well)."
  type        = map(string)
  default     = {}
}

################################################################################
# Worker (values passed to `modfleet worker` as MODFLEET_* variables)
################################################################################

variable "worker" {
  description = <<-EOT
    How the worker is installed and configured on each instance. version: the modfleet release
    installed, from the wheelhouse s3://<model_artifacts.bucket>/<wheelhouse_prefix>/<version>/
    (`make wheelhouse`, infra/README.md) into neuron_venv, the DLAMI's own Neuron environment,
    with no package index and no change to any package that environment already has. The timing
    fields mirror the worker's settings of the same name (worker/settings.py) and keep its defaults:
    visibility_timeout_s is passed on every ReceiveMessage and renewed every heartbeat_interval_s;
    processing_deadline_s bounds one message and sets the queue's own visibility timeout;
    shutdown_deadline_s bounds the drain after SIGTERM and sets systemd's TimeoutStopSec.
    replicas, tp_degree and batch_size must match the artifacts written by `modfleet compile`.
    extra_environment adds MODFLEET_* variables (names are checked against the worker's settings
    by tests/infra). memory_max: systemd's MemoryMax= for the worker service (bytes with K, M, G
    or T, a percentage of the instance's memory, or infinity); past it the kernel kills the worker
    and systemd restarts it, instead of the whole instance running out of memory.
  EOT
  type = object({
    version               = optional(string, "0.1.0")
    wheelhouse_prefix     = optional(string, "wheelhouse")
    neuron_venv           = optional(string, "/opt/aws_neuronx_venv_pytorch_2_7_transformers")
    backend               = optional(string, "neuron")
    replicas              = optional(number, 1)
    tp_degree             = optional(number, 2)
    batch_size            = optional(number, 4)
    visibility_timeout_s  = optional(number, 300)
    heartbeat_interval_s  = optional(number, 60)
    processing_deadline_s = optional(number, 900)
    shutdown_deadline_s   = optional(number, 60)
    stop_margin_s         = optional(number, 30)
    log_level             = optional(string, "info")
    memory_max            = optional(string, "90%")
    extra_environment     = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = var.worker.heartbeat_interval_s < var.worker.visibility_timeout_s
    error_message = "worker.heartbeat_interval_s must be shorter than worker.visibility_timeout_s, or messages reappear mid-work."
  }

  validation {
    condition     = var.worker.processing_deadline_s >= 1 && var.worker.processing_deadline_s <= 43200
    error_message = "worker.processing_deadline_s must be between 1 and 43200 s (the SQS visibility limit)."
  }

  validation {
    condition     = var.worker.shutdown_deadline_s >= 1 && var.worker.stop_margin_s >= 10
    error_message = "worker.shutdown_deadline_s must be positive and worker.stop_margin_s at least 10 s."
  }

  validation {
    condition     = can(regex("^([1-9][0-9]*[KMGT]?|[1-9][0-9]?%|100%|infinity)$", var.worker.memory_max))
    error_message = "worker.memory_max must be bytes (optionally with K, M, G or T), a percentage such as 90%, or infinity."
  }

  validation {
    condition     = alltrue([for name in keys(var.worker.extra_environment) : can(regex("^MODFLEET_[A-Z0-9_]+$", name))])
    error_message = "worker.extra_environment keys must be MODFLEET_* variables."
  }

  # These three are written into a shell script and a systemd unit: no spaces, quotes or `$`.
  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)*([a-z]+[0-9]+)?(\\.post[0-9]+)?(\\.dev[0-9]+)?$", var.worker.version))
    error_message = "worker.version must be a modfleet release version (PEP 440, e.g. 0.1.0 or 0.2.0rc1), the one in the wheelhouse's wheel name."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.worker.wheelhouse_prefix))
    error_message = "worker.wheelhouse_prefix must be an S3 key prefix of letters, digits, '.', '_', '-' and inner '/' (no leading or trailing slash)."
  }

  validation {
    condition     = can(regex("^/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.worker.neuron_venv))
    error_message = "worker.neuron_venv must be an absolute path of letters, digits, '.', '_', '-' and '/' (it is written into a shell script and the systemd unit)."
  }
}

variable "model_artifacts" {
  description = <<-EOT
    Where the compiled Neuron artifacts live: s3://bucket/prefix/version/ is synced to the instance
    before the worker starts. Changing version creates a new launch template version and starts an
    instance refresh. The same bucket holds the worker's wheelhouse (worker.wheelhouse_prefix).
    kms_key_arn: the key of that bucket, when it is encrypted with a customer key.
  EOT
  type = object({
    bucket      = string
    prefix      = optional(string, "compiled")
    version     = string
    kms_key_arn = optional(string)
  })
}

################################################################################
# Upload bucket
################################################################################

variable "bucket" {
  description = <<-EOT
    The upload bucket. name: defaults to <name>-uploads-<account id>. video_suffixes: object-created
    events on these suffixes (and their upper-case forms) are sent to the queue. key_prefix: only
    keys under it. The lifecycle rules abort incomplete multipart uploads, expire non-current
    versions, and optionally expire current objects (null keeps them).
  EOT
  type = object({
    name                               = optional(string)
    video_suffixes                     = optional(list(string), [".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi"])
    key_prefix                         = optional(string, "")
    abort_incomplete_upload_days       = optional(number, 1)
    noncurrent_version_expiration_days = optional(number, 30)
    current_version_expiration_days    = optional(number)
    force_destroy                      = optional(bool, false)
  })
  default = {}

  validation {
    condition     = length(var.bucket.video_suffixes) > 0 && alltrue([for s in var.bucket.video_suffixes : can(regex("^\\.[a-z0-9]+$", s))])
    error_message = "bucket.video_suffixes must be lower-case suffixes with a leading dot, e.g. \".mp4\"."
  }
}

################################################################################
# Queue and dead-letter queue
################################################################################

variable "queue" {
  description = <<-EOT
    The work queue and its dead-letter queue. The queue's visibility timeout is not set here: it is
    worker.processing_deadline_s + visibility_margin_s. max_receive_count: receives before a
    message moves to the dead-letter queue.
  EOT
  type = object({
    max_receive_count           = optional(number, 5)
    visibility_margin_s         = optional(number, 60)
    message_retention_seconds   = optional(number, 345600)
    dlq_message_retention_s     = optional(number, 1209600)
    receive_wait_time_seconds   = optional(number, 20)
    kms_data_key_reuse_period_s = optional(number, 300)
  })
  default = {}

  validation {
    condition     = var.queue.max_receive_count >= 1 && var.queue.max_receive_count <= 1000
    error_message = "queue.max_receive_count must be between 1 and 1000."
  }

  validation {
    condition     = var.queue.visibility_margin_s >= 0
    error_message = "queue.visibility_margin_s must not be negative."
  }
}

################################################################################
# Verdict and alarm topics
################################################################################

variable "verdict_subscriber_account_ids" {
  description = "Accounts allowed to subscribe to the verdict topic (empty: this account only)."
  type        = list(string)
  default     = []
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm)."
  type        = list(string)
  default     = []
}

################################################################################
# Fleet
################################################################################

variable "fleet" {
  description = <<-EOT
    The Auto Scaling group of Inf2 instances. subnet_ids: private subnets with a route to S3, SQS,
    SNS, CloudWatch Logs and Auto Scaling (NAT or VPC endpoints; no package index is needed).
    instance_types: Inf2 types of the mixed instances policy; each must have NeuronCores for
    worker.replicas x worker.tp_degree.
    backlog_per_instance: the target of the target-tracking policy (visible messages per in-service
    instance).
    The AMI is the Neuron DLAMI of one Neuron SDK release, the one model/neuron_sdk.py pins and
    every compile manifest records: by default the newest image owned by amazon whose name matches
    ami_name_filter and whose description names "Neuron SDK <neuron_sdk_release>" (the Neuron
    docs' way to find a given release's DLAMI; their SSM parameters only name the latest one).
    Overrides, at most one: ami_id, an exact image; ami_ssm_parameter, a parameter holding an image
    ID (not a .../latest/image_id one, which moves to newer SDKs). Whichever way it is found, the
    plan stops unless the image's description names the release.
  EOT
  type = object({
    vpc_id                                   = string
    subnet_ids                               = list(string)
    additional_security_group_ids            = optional(list(string), [])
    instance_types                           = optional(list(string), ["inf2.xlarge", "inf2.8xlarge"])
    min_size                                 = optional(number, 0)
    max_size                                 = optional(number, 4)
    on_demand_base_capacity                  = optional(number, 0)
    on_demand_percentage_above_base_capacity = optional(number, 100)
    spot_allocation_strategy                 = optional(string, "price-capacity-optimized")
    capacity_rebalance                       = optional(bool, true)
    backlog_per_instance                     = optional(number, 20)
    instance_warmup_s                        = optional(number, 900)
    neuron_sdk_release                       = optional(string, "2.25.0")
    ami_name_filter                          = optional(string, "Deep Learning AMI Neuron (Ubuntu 22.04)*")
    ami_id                                   = optional(string)
    ami_ssm_parameter                        = optional(string)
    root_volume_size_gb                      = optional(number, 200)
    root_volume_kms_key_arn                  = optional(string)
    refresh_min_healthy_percentage           = optional(number, 50)
  })

  validation {
    condition     = var.fleet.min_size >= 0 && var.fleet.min_size <= var.fleet.max_size
    error_message = "fleet.min_size must be between 0 and fleet.max_size."
  }

  validation {
    condition     = length(var.fleet.instance_types) > 0 && alltrue([for t in var.fleet.instance_types : startswith(t, "inf2.")])
    error_message = "fleet.instance_types must be Inf2 instance types."
  }

  validation {
    condition     = length(var.fleet.subnet_ids) > 0
    error_message = "fleet.subnet_ids must name at least one subnet."
  }

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.fleet.neuron_sdk_release))
    error_message = "fleet.neuron_sdk_release must be a Neuron SDK release as x.y.z (e.g. 2.25.0): the AMI lookup matches \"Neuron SDK <release>\" in the DLAMI's description."
  }

  validation {
    condition     = var.fleet.ami_id == null || can(regex("^ami-([0-9a-f]{8}|[0-9a-f]{17})$", var.fleet.ami_id))
    error_message = "fleet.ami_id must be an AMI ID (ami- and 8 or 17 hex digits) or null."
  }

  validation {
    condition     = var.fleet.ami_ssm_parameter == null || !endswith(coalesce(var.fleet.ami_ssm_parameter, "-"), "/latest/image_id")
    error_message = "fleet.ami_ssm_parameter must not be a .../latest/image_id parameter: it moves to each new DLAMI, whose Neuron SDK then differs from the one the model was compiled with (the worker refuses to start). Leave it null: the module finds the DLAMI of fleet.neuron_sdk_release by its description (\"*Neuron SDK <release>*\"), or set fleet.ami_id."
  }

  validation {
    condition     = var.fleet.ami_id == null || var.fleet.ami_ssm_parameter == null
    error_message = "Set at most one of fleet.ami_id and fleet.ami_ssm_parameter."
  }
}

################################################################################
# Records: verdict cache table and records bucket (evidence, hash lists)
################################################################################

variable "verdict_cache" {
  description = <<-EOT
    The verdict cache table <name>-verdicts (DynamoDB, on demand, encrypted with the stack's key,
    point-in-time recovery always on, items expire on their `expires_at` attribute).
    deletion_protection: a destroy of the stack stops at the table until this is off.
  EOT
  type = object({
    deletion_protection = optional(bool, false)
  })
  default = {}
}

variable "records" {
  description = <<-EOT
    The records bucket <name>-records-<region>: reviewers' evidence frames under evidence/ and the
    known-content hash lists under hashlists/. The bucket's default encryption is its own KMS key
    (the evidence key), so that who may read evidence is decided by that key's users, apart from
    who may read uploads. evidence_expiration_days: evidence objects (and their old versions)
    expire after this many days. noncurrent_version_expiration_days: old versions of hash lists.
    abort_incomplete_upload_days: multipart uploads left unfinished. force_destroy: a destroy
    empties the bucket first (tests and sandboxes only).
  EOT
  type = object({
    evidence_expiration_days           = optional(number, 90)
    noncurrent_version_expiration_days = optional(number, 30)
    abort_incomplete_upload_days       = optional(number, 1)
    force_destroy                      = optional(bool, false)
  })
  default = {}

  validation {
    condition     = var.records.evidence_expiration_days >= 1 && var.records.noncurrent_version_expiration_days >= 1 && var.records.abort_incomplete_upload_days >= 1
    error_message = "records: the expiration and abort days must be at least 1."
  }
}

################################################################################
# Alarms and logs
################################################################################

variable "alarms" {
  description = <<-EOT
    Thresholds of the stack's alarms; each alarm's description names its step in infra/README.md's
    runbook. oldest_message_age_s: the oldest message on the queue is older than this (null: twice
    worker.processing_deadline_s) for evaluation_periods one-minute periods. The dead-letter alarm
    fires on the first message. error_rate_percent: error verdicts (the worker's `Videos` metric,
    Status=error) as a share of all verdicts, over error_rate_periods periods of period_s, counted
    only in periods with at least error_rate_min_videos verdicts (a single failure of a quiet
    minute is no incident). publish_failures: failed SNS publish attempts (`PublishFailures`) per
    period_s above which publish_failure_periods periods alarm. stalled_minutes: the queue holds
    visible messages and no verdict came for this many minutes (the fleet is stuck or gone); with
    fleet.min_size 0 it must outlast fleet.instance_warmup_s, or every wake from zero pages.
  EOT
  type = object({
    oldest_message_age_s    = optional(number)
    evaluation_periods      = optional(number, 5)
    period_s                = optional(number, 60)
    error_rate_percent      = optional(number, 10)
    error_rate_min_videos   = optional(number, 10)
    error_rate_periods      = optional(number, 5)
    publish_failures        = optional(number, 0)
    publish_failure_periods = optional(number, 3)
    stalled_minutes         = optional(number, 30)
  })
  default = {}

  validation {
    condition     = var.alarms.error_rate_percent > 0 && var.alarms.error_rate_percent <= 100
    error_message = "alarms.error_rate_percent must be above 0 and at most 100."
  }

  validation {
    condition     = var.alarms.period_s >= 60 && var.alarms.period_s <= 3600 && var.alarms.period_s % 60 == 0
    error_message = "alarms.period_s must be a whole number of minutes from 60 to 3600 s: the worker's metrics have one-minute resolution."
  }

  validation {
    condition     = var.alarms.stalled_minutes >= 2 && var.alarms.stalled_minutes <= 1440
    error_message = "alarms.stalled_minutes must be between 2 and 1440 (a day)."
  }

  validation {
    condition = alltrue([
      for n in [var.alarms.evaluation_periods, var.alarms.error_rate_periods, var.alarms.publish_failure_periods] :
      n >= 1 && floor(n) == n
    ]) && var.alarms.publish_failures >= 0 && var.alarms.error_rate_min_videos >= 1
    error_message = "alarms: the *_periods must be whole numbers of at least 1, publish_failures at least 0 and error_rate_min_videos at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the worker's log group, in days."
  type        = number
  default     = 365
}

variable "kms_key_deletion_window_days" {
  description = "Waiting period before the stack's KMS key is deleted after a destroy (7-30)."
  type        = number
  default     = 30
}
