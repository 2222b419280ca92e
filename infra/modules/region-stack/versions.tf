terraform {
  # optional() object attributes with defaults need 1.3; preconditions 1.2.
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # insecure_value on aws_ssm_parameter, instance_maintenance_policy and
      # metric-math target tracking need the 5.x provider.
      version = ">= 5.40, < 7.0"
    }
  }
}
