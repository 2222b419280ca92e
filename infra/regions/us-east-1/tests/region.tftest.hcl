# This region's terraform.tfvars applied through the module against a mocked AWS provider: it
# passes the module's checks (NeuronCores, timings), and tests/infra reads this run's state
# (terraform test -verbose) to build the worker's Settings from the region's worker_environment.
# The roots share this file (ap-southeast-1/tests links here).

mock_provider "aws" {
  source = "../../tests/mocks"
}

run "this_regions_tfvars_pass_the_module_checks" {
  command = apply

  assert {
    condition     = output.worker_environment["MODFLEET_TP_DEGREE"] == tostring(var.worker.tp_degree) && output.autoscaling_group_name == "${var.name}-workers"
    error_message = "The module runs with this region's settings."
  }

  assert {
    condition     = var.region == basename(abspath(path.root))
    error_message = "A root's terraform.tfvars sets the region the root is named for."
  }
}
