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
    parser.add_argument("--prefix", default="",
                        help="Key prefix; a '/' is added if missing (default: none).")
    parser.add_argument("--multipart-threshold-mib", type=float, default=64,
                        help="Files at least this large go up in parts (default 64).")
    parser.add_argument("--part-size-mib", type=float, default=16,
                        help="Part size of multipart uploads, at least S3's 5 (default 16).")
    settings_mod.add_arguments(parser, ["bucket", *settings_mod.AWS_ACCESS, "log_level",
                                        "log_format"])
    parser.add_argument("--json", action="store_true",
                        help="Print one JSON object (format: tools/README.md).")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.ops.progress import progress_bar
    from tools.ops.submit import plan_uploads, transfer_config, upload_all
    from worker import resources
    from worker.aws import settings_client

    settings = resources.resolve(settings_mod.from_sources(args), needs=["bucket"])
    resources.check_access(settings, "bucket")  # a wrong bucket: one line, not a failure per file
    config = transfer_config(args.multipart_threshold_mib, args.part_size_mib)
    planned = plan_uploads(args.paths, args.prefix)
    total = sum(p.size_bytes for p in planned)
    with progress_bar("uploading", total, transfer=True) as advance:
        report = upload_all(settings_client("s3", settings), settings.bucket, planned, config,
                            advance)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        for u in report.uploaded:
            print(f"uploaded s3://{report.bucket}/{u.key}  {u.size_bytes} bytes"
                  f"{'  (multipart)' if u.multipart else ''}")
        for f in report.failed:
            print(f"FAILED {f.path} -> {f.key}: {f.error}", file=sys.stderr)
    return 1 if report.failed else 0
