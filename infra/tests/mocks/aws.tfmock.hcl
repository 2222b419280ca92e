# Well-formed values for what `terraform test` with `mock_provider "aws"` would otherwise fill with
# random strings: account, partition, region, ARNs, IDs. Shared by the module's and the roots' tests
# (mock_provider "aws" { source = "../../tests/mocks" }).

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/terraform-test"
    user_id    = "AIDATERRAFORMTEST0001"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition  = "aws"
    dns_suffix = "amazonaws.com"
  }
}

mock_data "aws_region" {
  defaults = {
    name = "us-east-1"
  }
}

mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
  }
}

mock_data "aws_ssm_parameter" {
  defaults = {
    insecure_value = "ami-0123456789abcdef0"
    value          = "ami-0123456789abcdef0"
  }
}

# A stand-in for the Neuron SDK 2.25.0 DLAMI (the module's default release). Its name follows the
# DLAMI's ("Deep Learning AMI Neuron (Ubuntu 22.04)", aws-neuron-sdk dlami/index.rst at the 2.25
# docs); the Neuron docs promise only that the description names the SDK release
# (deploy/environments/dlami.rst), so the rest of this description is made up.
mock_data "aws_ami" {
  defaults = {
    id               = "ami-0123456789abcdef0"
    name             = "Deep Learning AMI Neuron (Ubuntu 22.04) 20250731"
    description      = "Deep Learning AMI Neuron (Ubuntu 22.04), Neuron SDK 2.25.0 (test stand-in)"
    root_device_name = "/dev/sda1"
  }
}

mock_data "aws_subnets" {
  defaults = {
    ids = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
  }
}

mock_data "aws_subnet" {
  defaults = {
    vpc_id = "vpc-0aaaaaaaaaaaaaaa1"
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    arn = "arn:aws:s3:::modfleet-test-uploads-123456789012"
  }
}

mock_resource "aws_sqs_queue" {
  defaults = {
    arn = "arn:aws:sqs:us-east-1:123456789012:modfleet-test-videos"
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/modfleet-test-videos"
  }
}

mock_resource "aws_sns_topic" {
  defaults = {
    arn = "arn:aws:sns:us-east-1:123456789012:modfleet-test-topic"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/modfleet-test-worker"
  }
}

mock_resource "aws_iam_instance_profile" {
  defaults = {
    arn = "arn:aws:iam::123456789012:instance-profile/modfleet-test-worker"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/modfleet/modfleet-test/worker"
  }
}

mock_resource "aws_security_group" {
  defaults = {
    id  = "sg-0123456789abcdef0"
    arn = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123456789abcdef0"
  }
}

mock_resource "aws_launch_template" {
  defaults = {
    id             = "lt-0123456789abcdef0"
    arn            = "arn:aws:ec2:us-east-1:123456789012:launch-template/lt-0123456789abcdef0"
    latest_version = 1
  }
}

mock_resource "aws_autoscaling_group" {
  defaults = {
    arn = "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/modfleet-test-workers"
  }
}

mock_resource "aws_autoscaling_policy" {
  defaults = {
    arn = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:00000000-0000-0000-0000-000000000000:autoScalingGroupName/modfleet-test-workers:policyName/modfleet-test"
  }
}

mock_resource "aws_cloudwatch_metric_alarm" {
  defaults = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:modfleet-test"
  }
}

mock_resource "aws_dynamodb_table" {
  defaults = {
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/modfleet-test-verdicts"
  }
}

mock_resource "aws_ssm_parameter" {
  defaults = {
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/modfleet/modfleet-test/queue-url"
  }
}

mock_resource "aws_cloudwatch_dashboard" {
  defaults = {
    dashboard_arn = "arn:aws:cloudwatch::123456789012:dashboard/modfleet-test-us-east-1"
  }
}
