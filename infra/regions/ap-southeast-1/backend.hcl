# terraform init -backend-config=backend.hcl
# One state per region: the key names the region; the state bucket is the operator's own.
bucket       = "modfleet-tfstate-ap-southeast-1"
key          = "modfleet/ap-southeast-1/terraform.tfstate"
region       = "ap-southeast-1"
encrypt      = true
use_lockfile = true
