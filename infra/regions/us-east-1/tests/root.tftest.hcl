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

# A typed object() would drop a misspelled key and plan the default: the root refuses it instead.
run "a_misspelled_queue_setting_stops_the_plan" {
  command = plan

  variables {
    queue = {
      max_recieve_count = 2
    }
  }

  expect_failures = [output.settings]
}

run "a_misspelled_fleet_setting_stops_the_plan" {
  command = plan

  variables {
    fleet = {
      max_szie = 3
    }
  }

  expect_failures = [output.settings]
}

run "the_fleets_network_is_looked_up_not_set" {
  command = plan

  variables {
    fleet = {
      vpc_id = "vpc-0ccccccccccccccc3"
    }
  }

  expect_failures = [output.settings]
}

run "this_regions_settings_reach_the_module_with_defaults" {
  command = plan

  assert {
    condition = (
      output.settings.queue.max_receive_count == var.queue.max_receive_count &&
      output.settings.fleet.max_size == var.fleet.max_size &&
      output.settings.queue.visibility_margin_s == 60 &&
      output.settings.records.evidence_expiration_days == 90 &&
      output.settings.alarms.stalled_minutes == 30
    )
    error_message = "What terraform.tfvars sets reaches the module; the rest keeps the module's defaults."
  }
}
