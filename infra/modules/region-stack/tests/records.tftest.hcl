# The verdict cache table, the records bucket and its key, and the worker's role, applied against a
# mocked AWS provider: what each is, and that the role grants the worker's calls and nothing else.
# Run: terraform init -backend=false && terraform test (tests/infra does it with the offline mirror).

mock_provider "aws" {
  source = "../../tests/mocks"
}

# Distinct, well-formed ARNs for everything the worker's role names, so that a wrong reference shows.
override_resource {
  target = aws_sqs_queue.this
  values = {
    arn = "arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos"
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos"
  }
}

override_resource {
  target = aws_sqs_queue.dlq
  values = {
    arn = "arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos-dlq"
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos-dlq"
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
  target = aws_kms_key.evidence
  values = {
    arn    = "arn:aws:kms:us-east-1:123456789012:key/eeeeeeee-0000-0000-0000-000000000001"
    key_id = "eeeeeeee-0000-0000-0000-000000000001"
  }
}

override_resource {
  target = aws_dynamodb_table.verdicts
  values = {
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/modfleet-test-verdicts"
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
# Verdict cache table
################################################################################

run "verdict_cache_is_an_encrypted_on_demand_table_that_expires_items" {
  command = apply

  assert {
    condition = (
      aws_dynamodb_table.verdicts.name == "modfleet-test-verdicts" &&
      aws_dynamodb_table.verdicts.billing_mode == "PAY_PER_REQUEST" &&
      aws_dynamodb_table.verdicts.hash_key == "pk" && aws_dynamodb_table.verdicts.range_key == null &&
      [for a in aws_dynamodb_table.verdicts.attribute : [a.name, a.type]] == [["pk", "S"]]
    )
    error_message = "<name>-verdicts, on demand, keyed by pk (S) alone."
  }

  assert {
    condition = (
      one(aws_dynamodb_table.verdicts.server_side_encryption).enabled &&
      one(aws_dynamodb_table.verdicts.server_side_encryption).kms_key_arn == aws_kms_key.this.arn
    )
    error_message = "The table is encrypted with the stack's key."
  }

  assert {
    condition     = one(aws_dynamodb_table.verdicts.ttl).enabled && one(aws_dynamodb_table.verdicts.ttl).attribute_name == "expires_at"
    error_message = "Items expire on expires_at."
  }

  assert {
    condition     = one(aws_dynamodb_table.verdicts.point_in_time_recovery).enabled
    error_message = "Point-in-time recovery is on by default."
  }

  assert {
    condition     = output.verdict_table_name == "modfleet-test-verdicts" && output.worker_environment["MODFLEET_VERDICT_TABLE"] == "modfleet-test-verdicts"
    error_message = "The worker is told the table (MODFLEET_VERDICT_TABLE), and so is the operator."
  }
}

################################################################################
# Records bucket and its own key
################################################################################

run "records_bucket_is_private_tls_only_and_encrypted_with_its_own_key" {
  command = apply

  assert {
    condition     = aws_s3_bucket.records.bucket == "modfleet-test-records-us-east-1"
    error_message = "One records bucket per region: <name>-records-<region>."
  }

  assert {
    condition = (
      one(aws_s3_bucket_server_side_encryption_configuration.records.rule).bucket_key_enabled == false &&
      one(one(aws_s3_bucket_server_side_encryption_configuration.records.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms" &&
      one(one(aws_s3_bucket_server_side_encryption_configuration.records.rule).apply_server_side_encryption_by_default).kms_master_key_id == aws_kms_key.evidence.arn &&
      aws_kms_key.evidence.arn != aws_kms_key.this.arn && aws_kms_key.evidence.enable_key_rotation
    )
    error_message = "Default encryption is the evidence key (rotated, not the stack's), without a bucket key, so that KMS sees each object's ARN."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.records.block_public_acls && aws_s3_bucket_public_access_block.records.block_public_policy &&
      aws_s3_bucket_public_access_block.records.ignore_public_acls && aws_s3_bucket_public_access_block.records.restrict_public_buckets &&
      one(aws_s3_bucket_ownership_controls.records.rule).object_ownership == "BucketOwnerEnforced"
    )
    error_message = "All public access is blocked and the bucket owns every object."
  }

  assert {
    condition = [
      for s in data.aws_iam_policy_document.records.statement : [coalesce(s.effect, "Allow"), s.actions, s.resources, [for c in s.condition : [c.test, c.variable, c.values]]]
      ] == [["Deny", toset(["s3:*"]), toset([aws_s3_bucket.records.arn, "${aws_s3_bucket.records.arn}/*"]),
    [["Bool", "aws:SecureTransport", tolist(["false"])]]]]
    error_message = "The bucket policy denies every request without TLS, as the upload bucket's does."
  }

  assert {
    condition     = aws_s3_bucket_policy.records.bucket == aws_s3_bucket.records.id && one(aws_s3_bucket_versioning.records.versioning_configuration).status == "Enabled"
    error_message = "The policy is on the records bucket, which keeps versions (a replaced hash list can be restored)."
  }

  assert {
    condition     = output.records_bucket == "modfleet-test-records-us-east-1" && output.worker_environment["MODFLEET_RECORDS_BUCKET"] == "modfleet-test-records-us-east-1"
    error_message = "The worker is told the bucket (MODFLEET_RECORDS_BUCKET)."
  }
}

run "evidence_expires_on_its_own_rule" {
  command = apply

  variables {
    records = {
      evidence_expiration_days = 30
    }
  }

  assert {
    condition = {
      # (filter {} of the first rule leaves its prefix to the mocked provider: not compared)
      for r in aws_s3_bucket_lifecycle_configuration.records.rule : r.id => {
        status  = r.status
        prefix  = r.id == "abort-incomplete-multipart-uploads" ? "" : one(r.filter).prefix
        expires = try(one(r.expiration).days, null)
      }
      } == {
      "abort-incomplete-multipart-uploads" = { status = "Enabled", prefix = "", expires = null }
      "expire-evidence"                    = { status = "Enabled", prefix = "evidence/", expires = 30 }
      "expire-replaced-hash-lists"         = { status = "Enabled", prefix = "hashlists/", expires = 0 }
    }
    error_message = "evidence/ expires after records.evidence_expiration_days; hash lists never expire, only their old versions."
  }

  assert {
    condition = [for r in aws_s3_bucket_lifecycle_configuration.records.rule : one(r.noncurrent_version_expiration).noncurrent_days if r.id == "expire-replaced-hash-lists"] == [30] && [
      for r in aws_s3_bucket_lifecycle_configuration.records.rule : one(r.abort_incomplete_multipart_upload).days_after_initiation if r.id == "abort-incomplete-multipart-uploads"
    ] == [1]
    error_message = "Old hash list versions go after 30 days; unfinished multipart uploads after 1."
  }

  assert {
    condition     = output.evidence_prefix == "evidence/" && output.hashlist_prefix == "hashlists/"
    error_message = "The prefixes infra/README.md names."
  }
}

################################################################################
# The worker's role: its calls, each on this stack's resources, nothing else
################################################################################

run "worker_role_grants_only_the_workers_calls" {
  command = apply

  assert {
    condition = {
      for s in data.aws_iam_policy_document.worker.statement : s.sid => {
        effect    = coalesce(s.effect, "Allow")
        actions   = s.actions
        resources = s.resources
      }
      } == {
      ConsumeQueue = {
        effect = "Allow"
        actions = toset(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteMessageBatch", "sqs:ChangeMessageVisibility",
        "sqs:ChangeMessageVisibilityBatch", "sqs:GetQueueAttributes"])
        resources = toset([aws_sqs_queue.this.arn])
      }
      SettlePoisonMessages         = { effect = "Allow", actions = toset(["sqs:SendMessage", "sqs:GetQueueAttributes"]), resources = toset([aws_sqs_queue.dlq.arn]) }
      ReadUploads                  = { effect = "Allow", actions = toset(["s3:GetObject", "s3:GetObjectVersion"]), resources = toset(["arn:aws:s3:::modfleet-test-uploads-123456789012/*"]) }
      TellMissingUploadsFromDenied = { effect = "Allow", actions = toset(["s3:ListBucket"]), resources = toset(["arn:aws:s3:::modfleet-test-uploads-123456789012"]) }
      ReadModelArtifacts           = { effect = "Allow", actions = toset(["s3:GetObject"]), resources = toset(["arn:aws:s3:::modfleet-models-test/compiled/qwen2-vl/*"]) }
      ReadWorkerWheelhouse         = { effect = "Allow", actions = toset(["s3:GetObject"]), resources = toset(["arn:aws:s3:::modfleet-models-test/wheelhouse/*"]) }
      ListModelArtifacts           = { effect = "Allow", actions = toset(["s3:ListBucket"]), resources = toset(["arn:aws:s3:::modfleet-models-test"]) }
      PublishVerdicts              = { effect = "Allow", actions = toset(["sns:Publish", "sns:GetTopicAttributes"]), resources = toset([aws_sns_topic.verdicts.arn]) }
      LookUpAndStoreCachedVerdicts = { effect = "Allow", actions = toset(["dynamodb:GetItem", "dynamodb:PutItem"]), resources = toset(["arn:aws:dynamodb:us-east-1:123456789012:table/modfleet-test-verdicts"]) }
      WriteEvidence                = { effect = "Allow", actions = toset(["s3:PutObject"]), resources = toset(["arn:aws:s3:::modfleet-test-records-us-east-1/evidence/*"]) }
      EncryptEvidence              = { effect = "Allow", actions = toset(["kms:GenerateDataKey"]), resources = toset([aws_kms_key.evidence.arn]) }
      ReadHashLists                = { effect = "Allow", actions = toset(["s3:GetObject"]), resources = toset(["arn:aws:s3:::modfleet-test-records-us-east-1/hashlists/*"]) }
      ListHashLists                = { effect = "Allow", actions = toset(["s3:ListBucket"]), resources = toset(["arn:aws:s3:::modfleet-test-records-us-east-1"]) }
      DecryptHashLists             = { effect = "Allow", actions = toset(["kms:Decrypt"]), resources = toset([aws_kms_key.evidence.arn]) }
      UseStackKey                  = { effect = "Allow", actions = toset(["kms:Decrypt", "kms:GenerateDataKey"]), resources = toset([aws_kms_key.this.arn]) }
      WriteWorkerLogs = {
        effect    = "Allow"
        actions   = toset(["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"])
        resources = toset([aws_cloudwatch_log_group.worker.arn, "${aws_cloudwatch_log_group.worker.arn}:*"])
      }
      CompleteOwnDrainHook = {
        effect    = "Allow"
        actions   = toset(["autoscaling:CompleteLifecycleAction"])
        resources = toset(["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/modfleet-test-workers"])
      }
    }
    error_message = "The worker's role: exactly these actions, each on this stack's own resources (no wildcard action, no \"*\" resource)."
  }

  assert {
    condition = {
      for s in data.aws_iam_policy_document.worker.statement : s.sid => { for c in s.condition : c.variable => [c.test, c.values] } if length(s.condition) > 0
      } == {
      ListModelArtifacts = { "s3:prefix" = ["StringLike", tolist(["compiled/qwen2-vl/*", "wheelhouse/*"])] }
      EncryptEvidence = {
        "kms:ViaService"                   = ["StringEquals", tolist(["s3.us-east-1.amazonaws.com"])]
        "kms:EncryptionContext:aws:s3:arn" = ["StringLike", tolist(["arn:aws:s3:::modfleet-test-records-us-east-1/evidence/*"])]
      }
      ListHashLists = { "s3:prefix" = ["StringLike", tolist(["hashlists/", "hashlists/*"])] }
      DecryptHashLists = {
        "kms:ViaService"                   = ["StringEquals", tolist(["s3.us-east-1.amazonaws.com"])]
        "kms:EncryptionContext:aws:s3:arn" = ["StringLike", tolist(["arn:aws:s3:::modfleet-test-records-us-east-1/hashlists/*"])]
      }
    }
    error_message = "Listing is held to the prefixes; the evidence key encrypts only evidence/ objects and decrypts only hashlists/ objects, through S3."
  }

  assert {
    condition = (
      aws_iam_role_policy.worker.role == aws_iam_role.worker.id && aws_iam_instance_profile.worker.role == aws_iam_role.worker.name &&
      aws_launch_template.this.iam_instance_profile[0].arn == aws_iam_instance_profile.worker.arn
    )
    error_message = "The policy is the worker role's, whose instance profile the launch template uses."
  }
}

run "an_artifacts_key_is_added_to_the_stack_key" {
  command = plan

  variables {
    model_artifacts = {
      bucket      = "modfleet-models-test"
      prefix      = "compiled/qwen2-vl"
      version     = "2026-11-01"
      kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/aaaaaaaa-0000-0000-0000-000000000002"
    }
  }

  assert {
    condition = [for s in data.aws_iam_policy_document.worker.statement : s.resources if s.sid == "UseStackKey"] == [toset([
      "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
      "arn:aws:kms:us-east-1:123456789012:key/aaaaaaaa-0000-0000-0000-000000000002",
    ])]
    error_message = "model_artifacts.kms_key_arn joins the stack's key (decrypting the artifacts bucket)."
  }
}
