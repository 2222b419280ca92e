data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  bucket_name = coalesce(var.bucket.name, "${var.name}-uploads-${local.account_id}")
  bucket_arn  = "arn:${local.partition}:s3:::${local.bucket_name}"
  # S3 matches suffixes case-sensitively: clip.MP4 must be seen as well as clip.mp4.
  video_suffixes = distinct(concat(var.bucket.video_suffixes, [for s in var.bucket.video_suffixes : upper(s)]))

  # The worker sets its own, shorter visibility on every receive and renews it by heartbeat; the
  # queue's default still has to outlast the processing deadline, so that a message received by a
  # client that sets none (a replay, a debugging session) is not handed out twice mid-work.
  queue_visibility_timeout_s = var.worker.processing_deadline_s + var.queue.visibility_margin_s
  # systemd sends SIGTERM, waits this long, then SIGKILL: above the worker's own drain deadline.
  worker_timeout_stop_s = var.worker.shutdown_deadline_s + var.worker.stop_margin_s
  # The termination hook waits for the drain (systemctl stop) and the CompleteLifecycleAction call.
  drain_hook_timeout_s = local.worker_timeout_stop_s + 60
  oldest_message_age_s = coalesce(var.alarms.oldest_message_age_s, 2 * var.worker.processing_deadline_s)

  # What the worker caches, writes for reviewers and reads for known content (infra/README.md,
  # "What one stack is"): the table's key is
  # pk = "sha256:<hex>#<model>@<version>#<policy version>", items expire on expires_at; evidence
  # frames and hash lists live under fixed prefixes of the records bucket.
  verdict_table_name  = "${var.name}-verdicts"
  records_bucket_name = "${var.name}-records-${local.region}"
  evidence_prefix     = "evidence/"
  hashlist_prefix     = "hashlists/"

  asg_name        = "${var.name}-workers"
  asg_arn_pattern = "arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${local.asg_name}"
  drain_hook_name = "drain-worker"
  log_group_name  = "/modfleet/${var.name}/worker"

  artifacts_prefix = trim(var.model_artifacts.prefix, "/")
  artifacts_s3_uri = "s3://${var.model_artifacts.bucket}/${local.artifacts_prefix}/${var.model_artifacts.version}/"
  compiled_dir     = "/var/lib/modfleet/compiled/${var.model_artifacts.version}"
  # modfleet's wheel and its own dependencies' wheels (`make wheelhouse`); the Neuron SDK, torch
  # and transformers come from the DLAMI's environment.
  wheelhouse_prefix = trim(var.worker.wheelhouse_prefix, "/")
  wheelhouse_s3_uri = "s3://${var.model_artifacts.bucket}/${local.wheelhouse_prefix}/${var.worker.version}/"

  # The DLAMI: an explicit image (fleet.ami_id or the image ID in fleet.ami_ssm_parameter), else
  # the newest amazon-owned image of the pinned Neuron SDK release, found by name and description.
  ami_override = var.fleet.ami_id != null ? var.fleet.ami_id : one(data.aws_ssm_parameter.neuron_ami[*].insecure_value)
  ami_filters = local.ami_override != null ? { "image-id" = local.ami_override } : {
    "name"        = var.fleet.ami_name_filter
    "description" = "*Neuron SDK ${var.fleet.neuron_sdk_release}*"
  }

  # NeuronCores per Inf2 type (2 per Inferentia2 chip).
  neuron_cores = {
    "inf2.xlarge"   = 2
    "inf2.8xlarge"  = 2
    "inf2.24xlarge" = 12
    "inf2.48xlarge" = 24
  }
  cores_needed = var.worker.replicas * var.worker.tp_degree

  # Every MODFLEET_* variable the service sets; tests/infra checks the names against the worker.
  worker_environment = merge(var.worker.extra_environment, {
    MODFLEET_REGION                = local.region
    MODFLEET_QUEUE_URL             = aws_sqs_queue.this.url
    MODFLEET_DLQ_URL               = aws_sqs_queue.dlq.url
    MODFLEET_TOPIC_ARN             = aws_sns_topic.verdicts.arn
    MODFLEET_VERDICT_TABLE         = aws_dynamodb_table.verdicts.name
    MODFLEET_RECORDS_BUCKET        = aws_s3_bucket.records.id
    MODFLEET_BACKEND               = var.worker.backend
    MODFLEET_COMPILED_DIR          = local.compiled_dir
    MODFLEET_CACHE_DIR             = "/var/cache/modfleet"
    MODFLEET_REPLICAS              = tostring(var.worker.replicas)
    MODFLEET_TP_DEGREE             = tostring(var.worker.tp_degree)
    MODFLEET_BATCH_SIZE            = tostring(var.worker.batch_size)
    MODFLEET_VISIBILITY_TIMEOUT_S  = tostring(var.worker.visibility_timeout_s)
    MODFLEET_HEARTBEAT_INTERVAL_S  = tostring(var.worker.heartbeat_interval_s)
    MODFLEET_PROCESSING_DEADLINE_S = tostring(var.worker.processing_deadline_s)
    MODFLEET_SHUTDOWN_DEADLINE_S   = tostring(var.worker.shutdown_deadline_s)
    MODFLEET_LOG_FORMAT            = "json"
    MODFLEET_LOG_LEVEL             = var.worker.log_level
  })

  user_data_template = "${path.module}/templates/cloud-init.yaml.tftpl"
  user_data_vars = {
    environment        = local.worker_environment
    neuron_venv        = var.worker.neuron_venv
    neuron_sdk_release = var.fleet.neuron_sdk_release
    modfleet_version   = var.worker.version
    wheelhouse_s3_uri  = local.wheelhouse_s3_uri
    artifacts_s3_uri   = local.artifacts_s3_uri
    compiled_dir       = local.compiled_dir
    region             = local.region
    asg_name           = local.asg_name
    drain_hook_name    = local.drain_hook_name
    log_group_name     = local.log_group_name
    timeout_stop_s     = local.worker_timeout_stop_s
    memory_max         = var.worker.memory_max
  }

  tags = merge({ "modfleet:stack" = var.name }, var.tags)
}

################################################################################
# KMS key (bucket, queues, topics, log group)
################################################################################

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means this key only; the account statement is the standard one that lets IAM policies grant use of the key.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" means this key only; see CKV_AWS_109.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" means this key only; see CKV_AWS_109.
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "UploadBucketEventsToEncryptedQueue"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.bucket_arn]
    }
  }

  statement {
    sid       = "AlarmsToEncryptedTopic"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "LogGroupEncryption"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "modfleet ${var.name}: uploads, queues, topics, logs and the verdict cache"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Upload bucket
################################################################################

resource "aws_s3_bucket" "uploads" {
  #checkov:skip=CKV_AWS_144:Uploads are moderated in the region they arrive in; each region runs its own stack, and a replica would be moderated twice.
  #checkov:skip=CKV_AWS_18:Server access logs need a separate log bucket per region that the operator owns; object-level access is audited with CloudTrail data events instead.
  bucket        = local.bucket_name
  force_destroy = var.bucket.force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
  }
}

data "aws_iam_policy_document" "uploads" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.uploads.arn, "${aws_s3_bucket.uploads.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  policy = data.aws_iam_policy_document.uploads.json

  depends_on = [aws_s3_bucket_public_access_block.uploads]
}

resource "aws_s3_bucket_lifecycle_configuration" "uploads" {
  #checkov:skip=CKV_AWS_300:False positive: checkov drops the static rules when a dynamic rule is present; the first rule aborts incomplete uploads (tests/stack.tftest.hcl asserts it).
  bucket = aws_s3_bucket.uploads.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.bucket.abort_incomplete_upload_days
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.bucket.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  dynamic "rule" {
    for_each = var.bucket.current_version_expiration_days == null ? [] : [var.bucket.current_version_expiration_days]

    content {
      id     = "expire-current-versions"
      status = "Enabled"

      filter {}

      expiration {
        days = rule.value
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.uploads]
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.uploads.id

  dynamic "queue" {
    for_each = local.video_suffixes

    content {
      id            = "video-${trimprefix(queue.value, ".")}"
      queue_arn     = aws_sqs_queue.this.arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = var.bucket.key_prefix == "" ? null : var.bucket.key_prefix
      filter_suffix = queue.value
    }
  }

  # S3 sends a test event when the notification is saved: the queue must already accept it.
  depends_on = [aws_sqs_queue_policy.this]
}

################################################################################
# Queue and dead-letter queue
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name}-videos-dlq"
  message_retention_seconds         = var.queue.dlq_message_retention_s
  visibility_timeout_seconds        = local.queue_visibility_timeout_s
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = var.queue.kms_data_key_reuse_period_s
  tags                              = local.tags
}

resource "aws_sqs_queue" "this" {
  name                              = "${var.name}-videos"
  visibility_timeout_seconds        = local.queue_visibility_timeout_s
  message_retention_seconds         = var.queue.message_retention_seconds
  receive_wait_time_seconds         = var.queue.receive_wait_time_seconds
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = var.queue.kms_data_key_reuse_period_s

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.queue.max_receive_count
  })

  tags = local.tags
}

# Only this stack's queue may move messages into its dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "UploadBucketSendsObjectCreatedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.uploads.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue.json
}

################################################################################
# Verdict topic and alarm topic
################################################################################

resource "aws_sns_topic" "verdicts" {
  name              = "${var.name}-verdicts"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

data "aws_iam_policy_document" "verdicts" {
  statement {
    sid       = "WorkersPublishVerdicts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.verdicts.arn]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.worker.arn]
    }
  }

  statement {
    sid       = "SubscribersReadVerdicts"
    actions   = ["sns:Subscribe", "sns:GetTopicAttributes"]
    resources = [aws_sns_topic.verdicts.arn]

    principals {
      type = "AWS"
      identifiers = [
        for id in distinct(concat([local.account_id], var.verdict_subscriber_account_ids)) :
        "arn:${local.partition}:iam::${id}:root"
      ]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.verdicts.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "verdicts" {
  arn    = aws_sns_topic.verdicts.arn
  policy = data.aws_iam_policy_document.verdicts.json
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

data "aws_iam_policy_document" "alarms" {
  statement {
    sid       = "CloudWatchPublishesAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms.json
}

resource "aws_sns_topic_subscription" "alarm_emails" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

################################################################################
# Worker IAM role and instance profile
################################################################################

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  description        = "modfleet workers of ${var.name}: consume the queue, read uploads, publish verdicts, cache them, write evidence"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

# Only the calls `modfleet worker` and its instance's scripts make, only on this stack's ARNs.
data "aws_iam_policy_document" "worker" {
  statement {
    sid = "ConsumeQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:DeleteMessageBatch",
      "sqs:ChangeMessageVisibility",
      "sqs:ChangeMessageVisibilityBatch",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.this.arn]
  }

  statement {
    sid       = "SettlePoisonMessages"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "ReadUploads"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.uploads.arn}/*"]
  }

  # Without ListBucket, S3 answers a missing key with 403 AccessDenied instead of 404 NoSuchKey;
  # the worker settles NoSuchKey at once but retries AccessDenied until the dead-letter queue.
  statement {
    sid       = "TellMissingUploadsFromDenied"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.uploads.arn]
  }

  statement {
    sid       = "ReadModelArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${var.model_artifacts.bucket}/${local.artifacts_prefix}/*"]
  }

  # cloud-init installs modfleet from the wheelhouse with the instance's role.
  statement {
    sid       = "ReadWorkerWheelhouse"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${var.model_artifacts.bucket}/${local.wheelhouse_prefix}/*"]
  }

  statement {
    sid       = "ListModelArtifacts"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${var.model_artifacts.bucket}"]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.artifacts_prefix}/*", "${local.wheelhouse_prefix}/*"]
    }
  }

  # GetTopicAttributes: the worker's start-up check that its topic exists (worker/resources.py),
  # which sends nothing to subscribers.
  statement {
    sid       = "PublishVerdicts"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [aws_sns_topic.verdicts.arn]
  }

  # The verdict cache: look up and store, nothing else (no Scan, Query, Update or Delete).
  statement {
    sid       = "LookUpAndStoreCachedVerdicts"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.verdicts.arn]
  }

  # Evidence frames for reviewers: written, never read back, only under evidence/.
  statement {
    sid       = "WriteEvidence"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.records.arn}/${local.evidence_prefix}*"]
  }

  statement {
    sid       = "EncryptEvidence"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.evidence.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["${aws_s3_bucket.records.arn}/${local.evidence_prefix}*"]
    }
  }

  # Known-content lists: read and listed under hashlists/ only.
  statement {
    sid       = "ReadHashLists"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.records.arn}/${local.hashlist_prefix}*"]
  }

  statement {
    sid       = "ListHashLists"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.records.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.hashlist_prefix, "${local.hashlist_prefix}*"]
    }
  }

  statement {
    sid       = "DecryptHashLists"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.evidence.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["${aws_s3_bucket.records.arn}/${local.hashlist_prefix}*"]
    }
  }

  statement {
    sid       = "UseStackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = compact([aws_kms_key.this.arn, var.model_artifacts.kms_key_arn])
  }

  statement {
    sid       = "WriteWorkerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.worker.arn, "${aws_cloudwatch_log_group.worker.arn}:*"]
  }

  statement {
    sid       = "CompleteOwnDrainHook"
    actions   = ["autoscaling:CompleteLifecycleAction"]
    resources = [local.asg_arn_pattern]
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "${var.name}-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_instance_profile" "worker" {
  name = "${var.name}-worker"
  role = aws_iam_role.worker.name
  tags = local.tags
}

################################################################################
# Logs
################################################################################

resource "aws_cloudwatch_log_group" "worker" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

################################################################################
# Launch template (Neuron deep-learning AMI)
################################################################################

# Only when fleet.ami_ssm_parameter is set: the Neuron DLAMIs' public parameters name only the
# latest image of each type, so the default lookup is by release (below) and needs none.
data "aws_ssm_parameter" "neuron_ami" {
  count = var.fleet.ami_ssm_parameter == null ? 0 : 1

  name = var.fleet.ami_ssm_parameter
}

# The DLAMI of the pinned Neuron SDK release. "Each Neuron DLAMI includes the SDK version in its
# description" (aws-neuron-sdk deploy/environments/dlami.rst): the default filters on it.
data "aws_ami" "neuron" {
  owners      = local.ami_override == null ? ["amazon"] : null
  most_recent = true

  dynamic "filter" {
    for_each = local.ami_filters

    content {
      name   = filter.key
      values = [filter.value]
    }
  }

  # Catches an override naming another release's image (or a custom image that dropped the
  # release from its description): its SDK would not match the compiled model's manifest.
  lifecycle {
    postcondition {
      condition     = strcontains(coalesce(self.description, "-"), "Neuron SDK ${var.fleet.neuron_sdk_release}")
      error_message = "AMI ${self.id} (${coalesce(self.name, "no name")}) is not a Neuron SDK ${var.fleet.neuron_sdk_release} DLAMI: its description \"${coalesce(self.description, "")}\" does not name that release. Use the release's DLAMI (leave fleet.ami_id and fleet.ami_ssm_parameter null), or set fleet.neuron_sdk_release to the release the model was compiled with."
    }
  }
}

resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "modfleet workers: no inbound; HTTPS out to AWS APIs"
  vpc_id      = var.fleet.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to SQS, S3, SNS, CloudWatch Logs and Auto Scaling"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_launch_template" "this" {
  name                   = "${var.name}-worker"
  description            = "modfleet worker, model ${var.model_artifacts.version}"
  image_id               = data.aws_ami.neuron.id
  update_default_version = true
  user_data              = base64encode(templatefile(local.user_data_template, local.user_data_vars))

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = data.aws_ami.neuron.root_device_name

    ebs {
      volume_size           = var.fleet.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.fleet.root_volume_kms_key_arn
      delete_on_termination = true
    }
  }

  network_interfaces {
    associate_public_ip_address = false
    delete_on_termination       = true
    security_groups             = concat([aws_security_group.worker.id], var.fleet.additional_security_group_ids)
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-worker" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.tags
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = alltrue([for t in var.fleet.instance_types : lookup(local.neuron_cores, t, 0) >= local.cores_needed])
      error_message = "Every fleet.instance_types entry needs worker.replicas x worker.tp_degree NeuronCores."
    }
  }
}

################################################################################
# Auto Scaling group
################################################################################

resource "aws_autoscaling_group" "this" {
  name                      = local.asg_name
  min_size                  = var.fleet.min_size
  max_size                  = var.fleet.max_size
  vpc_zone_identifier       = var.fleet.subnet_ids
  capacity_rebalance        = var.fleet.capacity_rebalance
  default_instance_warmup   = var.fleet.instance_warmup_s
  health_check_type         = "EC2"
  health_check_grace_period = var.fleet.instance_warmup_s
  metrics_granularity       = "1Minute"
  enabled_metrics           = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances", "GroupTerminatingInstances"]

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = var.fleet.on_demand_base_capacity
      on_demand_percentage_above_base_capacity = var.fleet.on_demand_percentage_above_base_capacity
      spot_allocation_strategy                 = var.fleet.spot_allocation_strategy
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.this.id
        version            = aws_launch_template.this.latest_version
      }

      dynamic "override" {
        for_each = var.fleet.instance_types

        content {
          instance_type = override.value
        }
      }
    }
  }

  # Scale-in, rebalancing and refreshes stop the worker through this hook: the instance's drain
  # service sees the Terminated target state, stops the worker (SIGTERM, drain) and completes it.
  initial_lifecycle_hook {
    name                 = local.drain_hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = local.drain_hook_timeout_s
    default_result       = "CONTINUE"
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = var.fleet.refresh_min_healthy_percentage
      skip_matching          = true
    }
  }

  dynamic "tag" {
    for_each = local.tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  # The scaling policies own the desired capacity.
  lifecycle {
    ignore_changes = [desired_capacity]
  }

  depends_on = [aws_iam_role_policy.worker]
}

################################################################################
# Scaling on backlog per instance
################################################################################

resource "aws_autoscaling_policy" "backlog" {
  name                   = "${var.name}-backlog-per-instance"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.fleet.backlog_per_instance

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "Visible messages"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.this.name
            }
          }
        }
      }

      metrics {
        id          = "in_service"
        label       = "In-service instances"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"

            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.this.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_instance"
        label       = "Visible messages per in-service instance"
        expression  = "visible / in_service"
        return_data = true
      }
    }
  }
}

# Target tracking has no data point at zero instances (division by zero), so a group scaled to
# zero is woken by this step policy when messages wait and nothing is desired.
resource "aws_autoscaling_policy" "wake_from_zero" {
  name                   = "${var.name}-wake-from-zero"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "StepScaling"
  adjustment_type        = "ChangeInCapacity"

  step_adjustment {
    metric_interval_lower_bound = 0
    scaling_adjustment          = 1
  }
}

resource "aws_cloudwatch_metric_alarm" "wake_from_zero" {
  alarm_name          = "${var.name}-wake-from-zero"
  alarm_description   = "Messages are waiting and the worker group's desired capacity is zero."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.wake_from_zero.arn]
  tags                = local.tags

  metric_query {
    id = "visible"

    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      period      = 60
      stat        = "Maximum"
      dimensions  = { QueueName = aws_sqs_queue.this.name }
    }
  }

  metric_query {
    id = "desired"

    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupDesiredCapacity"
      period      = 60
      stat        = "Maximum"
      dimensions  = { AutoScalingGroupName = aws_autoscaling_group.this.name }
    }
  }

  metric_query {
    id          = "waiting_at_zero"
    expression  = "IF(desired == 0, visible, 0)"
    label       = "Visible messages while desired capacity is zero"
    return_data = true
  }
}

################################################################################
# Alarms
################################################################################

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Messages reached the dead-letter queue. Runbook step R1 (infra/README.md, Runbook): inspect them, then `modfleet replay-dlq`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message_age" {
  alarm_name          = "${var.name}-oldest-message-age"
  alarm_description   = "The oldest upload has waited longer than ${local.oldest_message_age_s} s: the fleet is behind or stuck. Runbook step R2 (infra/README.md, Runbook)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.this.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = var.alarms.evaluation_periods
  threshold           = local.oldest_message_age_s
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}
