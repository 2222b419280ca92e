region = "us-east-1"
name   = "modfleet-use1"

tags = {
  "modfleet:owner" = "moderation-platform"
}

model_artifacts = {
  bucket  = "modfleet-models-use1"
  prefix  = "compiled/qwen2-vl-2b-moderation"
  version = "2026-11-01"
}

worker = {
  replicas   = 1
  tp_degree  = 2
  batch_size = 4
}

fleet = {
  instance_types       = ["inf2.xlarge", "inf2.8xlarge"]
  min_size             = 0
  max_size             = 8
  backlog_per_instance = 20
}

queue = {
  max_receive_count = 5
}
