# The stack with its defaults, applied against a mocked AWS provider: the user data and the
# worker_environment an instance gets. tests/infra reads this run's state (terraform test -verbose)
# to check the unit and the install script against the worker's own Settings and systemd.

mock_provider "aws" {
  source = "../../tests/mocks"
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

run "the_worker_as_an_instance_gets_it" {
  command = apply

  assert {
    condition = alltrue([
      for name in ["MODFLEET_REGION", "MODFLEET_QUEUE_URL", "MODFLEET_DLQ_URL", "MODFLEET_TOPIC_ARN", "MODFLEET_VERDICT_TABLE", "MODFLEET_RECORDS_BUCKET"] :
      contains(keys(output.worker_environment), name)
    ])
    error_message = "The worker is told its region, queue, dead-letter queue, topic, verdict table and records bucket."
  }
}
