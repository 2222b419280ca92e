################################################################################
# Stack parameters: what `modfleet --stack <name>` reads
################################################################################

# String parameters under /modfleet/<name>/ (infra/README.md, "Stack parameters"): the CLI lists
# the prefix with GetParametersByPath and needs no output exported by hand. Names and URLs, no
# secrets: String, so that reading them needs no KMS grant.
locals {
  stack_parameter_prefix = "/modfleet/${var.name}/"
  stack_parameters = {
    "queue-url"         = aws_sqs_queue.this.url
    "dlq-url"           = aws_sqs_queue.dlq.url
    "topic-arn"         = aws_sns_topic.verdicts.arn
    "bucket"            = aws_s3_bucket.uploads.id
    "verdict-table"     = aws_dynamodb_table.verdicts.name
    "records-bucket"    = aws_s3_bucket.records.id
    "evidence-prefix"   = local.evidence_prefix
    "hashlist-prefix"   = local.hashlist_prefix
    "autoscaling-group" = aws_autoscaling_group.this.name
    "log-group"         = aws_cloudwatch_log_group.worker.name
  }
}

resource "aws_ssm_parameter" "stack" {
  #checkov:skip=CKV2_AWS_34:These are resource names and URLs, not secrets; as String parameters every operator that may list the stack reads them without a KMS grant.
  for_each = local.stack_parameters

  name        = "${local.stack_parameter_prefix}${each.key}"
  description = "modfleet ${var.name}: ${each.key}"
  type        = "String"
  # insecure_value: the same String parameter, shown in plans (these values are no secret).
  insecure_value = each.value
  tags           = local.tags
}
