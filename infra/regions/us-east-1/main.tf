provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "modfleet:region-root" = var.region
      "managed-by"           = "terraform"
    }
  }
}

# Worker subnets are found by tag, so that this root holds no account-specific IDs; worker_vpc_id
# narrows the search to one VPC where the tag is used in several.
data "aws_subnets" "workers" {
  filter {
    name   = "tag:${var.worker_subnet_tag.key}"
    values = [var.worker_subnet_tag.value]
  }

  dynamic "filter" {
    for_each = var.worker_vpc_id == null ? [] : [var.worker_vpc_id]

    content {
      name   = "vpc-id"
      values = [filter.value]
    }
  }

  lifecycle {
    postcondition {
      condition     = length(self.ids) > 0
      error_message = "No subnet${var.worker_vpc_id == null ? "" : " of ${var.worker_vpc_id}"} carries the tag ${var.worker_subnet_tag.key}=${var.worker_subnet_tag.value}: tag the private worker subnets (see infra/README.md)."
    }
  }
}

data "aws_subnet" "workers" {
  for_each = toset(data.aws_subnets.workers.ids)

  id = each.value
}

locals {
  worker_subnet_ids = sort(data.aws_subnets.workers.ids)
  worker_vpc_ids    = sort(distinct([for subnet in data.aws_subnet.workers : subnet.vpc_id]))
}

# One VPC: the security group lives in one VPC, and a group whose subnets span two would launch
# instances that group cannot be attached to. Tag lookups cross VPCs, so this is checked at plan.
data "aws_vpc" "workers" {
  id = local.worker_vpc_ids[0]

  lifecycle {
    precondition {
      condition     = length(local.worker_vpc_ids) == 1
      error_message = "The subnets tagged ${var.worker_subnet_tag.key}=${var.worker_subnet_tag.value} lie in ${length(local.worker_vpc_ids)} VPCs (${join(", ", local.worker_vpc_ids)}); the workers must run in one. Set worker_vpc_id in terraform.tfvars to the VPC to use, or remove the tag from the other VPCs' subnets."
    }
  }
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
  records         = var.records
  verdict_cache   = var.verdict_cache
  alarm_emails    = var.alarm_emails

  fleet = merge(var.fleet, {
    vpc_id     = data.aws_vpc.workers.id
    subnet_ids = local.worker_subnet_ids
  })
}

# Keys written in terraform.tfvars that the module's object types lack: a typed object() would drop
# them in silence, so the `settings` output refuses them (outputs.tf). fleet's vpc_id and
# subnet_ids are this root's own lookups, not settings.
locals {
  written_settings = {
    worker          = var.worker
    model_artifacts = var.model_artifacts
    bucket          = var.bucket
    queue           = var.queue
    fleet           = var.fleet
    alarms          = var.alarms
    records         = var.records
    verdict_cache   = var.verdict_cache
  }
  known_setting_keys = {
    for name, taken in module.stack.settings :
    name => sort(setsubtract(keys(taken), name == "fleet" ? ["vpc_id", "subnet_ids"] : []))
  }
  unknown_setting_keys = {
    for name, written in local.written_settings :
    name => sort(setsubtract(keys(written), local.known_setting_keys[name]))
    if length(setsubtract(keys(written), local.known_setting_keys[name])) > 0
  }
}
