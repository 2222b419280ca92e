"""`modfleet local-stack`: the embedded AWS endpoint, provisioned, until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from worker import settings as settings_mod

NAME = "local-stack"
HELP = ("Start the embedded AWS endpoint (moto on loopback) with a bucket, queue, dead-letter "
        "queue, verdict topic and tap queue; print where they are and run until interrupted.")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="Loopback address to listen on (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=0, help="Port (0: pick a free one).")
    parser.add_argument("--name", default="modfleet", help="Prefix of the resource names (default modfleet).")
    parser.add_argument("--max-receive-count", type=int, default=3,
                        help="Receives before SQS moves a message to the dead-letter queue (default 3).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object, for scripts.")
    parser.add_argument(
        "--terraform", action="store_true",
        help="Instead of provisioning in Python, serve over HTTPS and `terraform apply` a region "
             "root of infra/ (a few minutes); on Ctrl-C, destroy it and check that nothing is "
             "left. Needs terraform and the AWS provider mirror (MODFLEET_TF_PLUGIN_DIR).")
    parser.add_argument(
        "--root", default="us-east-1",
        help="With --terraform: the region root under infra/regions/ (default us-east-1).")
    parser.add_argument(
        "--work-dir", type=Path, default=None,
        help="With --terraform: keep the working copy, state and certificates here (default: a "
             "temporary directory, removed at exit).")
    settings_mod.add_arguments(parser, ["region", "visibility_timeout_s"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.terraform:
        return _run_terraform(args)
    from tools.lab.embedded_aws import EmbeddedAws, provision

    settings = settings_mod.from_sources(args)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    with EmbeddedAws(host=args.host, port=args.port) as aws:
        info = provision(aws.endpoint_url, settings.region, args.name, args.max_receive_count,
                         settings.visibility_timeout_s)
        if args.json:
            print(json.dumps(info.as_dict()), flush=True)
        else:
            for key, value in info.as_dict().items():
                print(f"{key:>14}  {value}")
            print(f"\n# point modfleet at it; the queue, dead-letter queue, topic and bucket come "
                  f"from its SSM\n# parameters under /modfleet/{info.name}/ (--stack "
                  f"{info.name}, or the region's only stack):")
            print(f"export MODFLEET_ENDPOINT_URL={info.endpoint_url}")
            print(f"export MODFLEET_REGION={info.region}")
            print("modfleet submit ../shared/media/nasa_13013.mp4\n"
                  "modfleet worker --exit-when-idle 5")
            print("\nRunning; Ctrl-C to stop.", flush=True)
        stopped.wait()
    return 0


def _run_terraform(args: argparse.Namespace) -> int:
    """Apply a region root to the embedded stack, hold it until interrupted, destroy it."""
    from tools.lab.terraform_local import AppliedStack

    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    with tempfile.TemporaryDirectory(prefix="modfleet-terraform-") as tmp:
        work_dir = args.work_dir or Path(tmp)
        held = AppliedStack(work_dir, args.root,
                            say=lambda message: print(message, file=sys.stderr, flush=True))
        with held as applied:
            if args.json:
                print(json.dumps({"event": "applied", **applied.as_dict()}), flush=True)
            else:
                for key, value in applied.stack.as_dict().items():
                    print(f"{key:>14}  {value}")
                print("\n# the worker's settings, from the root's worker_environment output:")
                for key, value in applied.worker_env.items():
                    print(f"export {key}={value}")
                print("\nApplied; Ctrl-C to destroy and stop.", flush=True)
            stopped.wait()
        leftovers = held.leftovers or []
        if args.json:
            print(json.dumps({"event": "destroyed", "leftovers": leftovers}), flush=True)
        else:
            print("Destroyed; nothing left." if not leftovers else
                  "Left after destroy:\n  " + "\n  ".join(leftovers), flush=True)
    return 0 if not leftovers else 1
