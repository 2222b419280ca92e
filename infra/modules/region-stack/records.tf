################################################################################
# Verdict cache table
################################################################################

# One item per (content SHA-256, model version, policy version): a re-upload of the same bytes
# gets the cached verdict without a fetch or a decode. On demand: re-uploads come in bursts.
resource "aws_dynamodb_table" "verdicts" {
  name                        = local.verdict_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.verdict_cache.deletion_protection
  tags                        = local.tags

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}

################################################################################
# Evidence key: the records bucket's own key
################################################################################

# Reading evidence frames is a reviewer's right, not a worker's: the frames get a key of their own,
# whose users are granted apart from the stack key's (which every worker holds).
data "aws_iam_policy_document" "evidence_key" {
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
}

resource "aws_kms_key" "evidence" {
  description             = "modfleet ${var.name}: records bucket (evidence frames, hash lists)"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  policy                  = data.aws_iam_policy_document.evidence_key.json
  tags                    = local.tags
}

resource "aws_kms_alias" "evidence" {
  name          = "alias/${var.name}-evidence"
  target_key_id = aws_kms_key.evidence.key_id
}

################################################################################
# Records bucket: evidence/ and hashlists/
################################################################################

resource "aws_s3_bucket" "records" {
  #checkov:skip=CKV_AWS_144:Evidence and hash lists belong to the region whose uploads they describe; each region runs its own stack.
  #checkov:skip=CKV_AWS_18:Server access logs need a separate log bucket per region that the operator owns; object-level access is audited with CloudTrail data events instead.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of this bucket: the worker writes evidence, operators write hash lists, and both are read on demand.
  bucket        = local.records_bucket_name
  force_destroy = var.records.force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "records" {
  bucket = aws_s3_bucket.records.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "records" {
  bucket                  = aws_s3_bucket.records.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Versions keep a replaced hash list recoverable; evidence is written once per key.
resource "aws_s3_bucket_versioning" "records" {
  bucket = aws_s3_bucket.records.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "records" {
  bucket = aws_s3_bucket.records.id

  rule {
    # No bucket key: S3 then asks KMS with each object's own ARN as encryption context, which the
    # worker's grants match on (encrypt under evidence/, decrypt under hashlists/ only). Evidence
    # is written for review and block verdicts only, so the per-object KMS calls stay few.
    bucket_key_enabled = false

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.evidence.arn
    }
  }
}

data "aws_iam_policy_document" "records" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.records.arn, "${aws_s3_bucket.records.arn}/*"]

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

resource "aws_s3_bucket_policy" "records" {
  bucket = aws_s3_bucket.records.id
  policy = data.aws_iam_policy_document.records.json

  depends_on = [aws_s3_bucket_public_access_block.records]
}

resource "aws_s3_bucket_lifecycle_configuration" "records" {
  bucket = aws_s3_bucket.records.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.records.abort_incomplete_upload_days
    }
  }

  rule {
    id     = "expire-evidence"
    status = "Enabled"

    filter {
      prefix = local.evidence_prefix
    }

    expiration {
      days = var.records.evidence_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  rule {
    id     = "expire-replaced-hash-lists"
    status = "Enabled"

    filter {
      prefix = local.hashlist_prefix
    }

    noncurrent_version_expiration {
      noncurrent_days = var.records.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.records]
}
