"""The lab: what develops and proves modfleet and never ships to an instance (the embedded AWS
stack, local Terraform, sample videos, benchmarks, chaos runs, the in-memory queue and the test
harness).  Nothing in model/, worker/ or tools/ops imports it; the CLI loads it only inside the
commands that need it (demo, local-stack, bench, chaos).
"""
