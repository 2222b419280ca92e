provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "modfleet:region-root" = var.region
      "managed-by"           = "terraform"
    }
  }
}

# Worker subnets are found by tag, so that this root holds no account-specific IDs.
data "aws_subnets" "workers" {
  filter {
    name   = "tag:${var.worker_subnet_tag.key}"
    values = [var.worker_subnet_tag.value]
  }

  lifecycle {
    postcondition {
      condition     = length(self.ids) > 0
      error_message = "No subnet carries the worker tag: tag the private worker subnets (see infra/README.md)."
    }
  }
}

data "aws_subnet" "first_worker_subnet" {
  id = sort(data.aws_subnets.workers.ids)[0]
}

module "stack" {
  source = "../../modules/region-stack"

  name            = var.name
  tags            = var.tags
  worker          = var.worker
  model_artifacts = var.model_artifacts
  bucket          = var.bucket
  queue           = var.queue
  alarms          = var.alarms
  alarm_emails    = var.alarm_emails

  fleet = merge(var.fleet, {
    vpc_id     = data.aws_subnet.first_worker_subnet.vpc_id
    subnet_ids = sort(data.aws_subnets.workers.ids)
  })
}
