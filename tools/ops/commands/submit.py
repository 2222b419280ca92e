"""`modfleet submit`: upload videos to the bucket; its notifications enqueue them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from worker import settings as settings_mod

NAME = "submit"
HELP = ("Upload video files (or directories of them) to the upload bucket, in parts when large, "
        "so that the bucket's notifications put them on the queue.")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="Video files, or directories whose videos are uploaded recursively.")
    parser.add_argument("--bucket", required=True, help="The upload bucket.")
    parser.add_argument("--prefix", default="",
                        help="Key prefix; a '/' is added if missing (default: none).")
    parser.add_argument("--multipart-threshold-mib", type=float, default=64,
                        help="Files at least this large go up in parts (default 64).")
    parser.add_argument("--part-size-mib", type=float, default=16,
                        help="Part size of multipart uploads, at least S3's 5 (default 16).")
    settings_mod.add_arguments(parser, ["region", "endpoint_url", "log_level", "log_format"])
    parser.add_argument("--json", action="store_true",
                        help="Print one JSON object (format: tools/README.md).")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from worker.aws import boto3_client
    from tools.ops.progress import progress_bar
    from tools.ops.submit import plan_uploads, transfer_config, upload_all

    settings = settings_mod.from_sources(args)
    config = transfer_config(args.multipart_threshold_mib, args.part_size_mib)
    planned = plan_uploads(args.paths, args.prefix)
    total = sum(p.size_bytes for p in planned)
    with progress_bar("uploading", total, transfer=True) as advance:
        report = upload_all(boto3_client("s3", settings.region, settings.endpoint_url), args.bucket, planned, config, advance)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        for u in report.uploaded:
            print(f"uploaded s3://{report.bucket}/{u.key}  {u.size_bytes} bytes"
                  f"{'  (multipart)' if u.multipart else ''}")
        for f in report.failed:
            print(f"FAILED {f.path} -> {f.key}: {f.error}", file=sys.stderr)
    return 1 if report.failed else 0
