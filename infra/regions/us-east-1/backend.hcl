# terraform init -backend-config=backend.hcl
# One state per region: the key names the region; the state bucket is the operator's own.
bucket       = "modfleet-tfstate-us-east-1"
key          = "modfleet/us-east-1/terraform.tfstate"
region       = "us-east-1"
encrypt      = true
use_lockfile = true
