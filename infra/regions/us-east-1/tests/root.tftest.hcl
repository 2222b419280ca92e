# A region root planned against a mocked AWS provider, with this region's terraform.tfvars: the
# worker network lookup (one VPC, or a refusal that says what to do) and the tfvars passing the
# module's checks. The roots share this file (ap-southeast-1/tests links here).
# Run: terraform init -backend=false && terraform test (tests/infra does it with the offline mirror).

mock_provider "aws" {
  source = "../../tests/mocks"
}

run "tagged_subnets_of_one_vpc_feed_the_module" {
  command = plan

  assert {
    condition     = output.worker_vpc_id == "vpc-0aaaaaaaaaaaaaaa1"
    error_message = "The fleet's VPC is the one VPC of the tagged subnets."
  }

  assert {
    condition     = output.worker_subnet_ids == tolist(["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"])
    error_message = "Every tagged subnet is a worker subnet, sorted."
  }
}

run "this_regions_tfvars_pass_the_module_checks" {
  command = apply

  assert {
    condition     = output.worker_environment["MODFLEET_TP_DEGREE"] == tostring(var.worker.tp_degree) && output.autoscaling_group_name == "${var.name}-workers"
    error_message = "The module runs with this region's settings."
  }
}

run "tagged_subnets_in_two_vpcs_are_refused" {
  command = plan

  override_data {
    target = data.aws_subnet.workers["subnet-0aaaaaaaaaaaaaaa2"]
    values = {
      vpc_id = "vpc-0bbbbbbbbbbbbbbb2"
    }
  }

  expect_failures = [data.aws_vpc.workers]
}

run "worker_vpc_id_picks_one_vpc" {
  command = plan

  variables {
    worker_vpc_id = "vpc-0aaaaaaaaaaaaaaa1"
  }

  assert {
    condition     = output.worker_vpc_id == "vpc-0aaaaaaaaaaaaaaa1"
    error_message = "worker_vpc_id selects the VPC."
  }
}

run "no_tagged_subnet_is_refused" {
  command = plan

  override_data {
    target = data.aws_subnets.workers
    values = {
      ids = []
    }
  }

  expect_failures = [data.aws_subnets.workers]
}

run "rejects_a_worker_vpc_id_that_is_no_vpc_id" {
  command = plan

  variables {
    worker_vpc_id = "subnet-0aaaaaaaaaaaaaaa1"
  }

  expect_failures = [var.worker_vpc_id]
}
