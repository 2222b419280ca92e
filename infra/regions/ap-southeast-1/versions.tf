terraform {
  # S3 state locking without DynamoDB (use_lockfile) needs 1.10.
  required_version = ">= 1.10"

  # Partial configuration: terraform init -backend-config=backend.hcl
  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}
