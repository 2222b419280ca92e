"""`dlq export`: write the dead letters the filters select as JSON lines, changing nothing.

The output is a file, ``-`` (stdout), or an S3 object ``s3://bucket/key`` (written to a temporary
file during the scan and uploaded when it ends, interrupted or not, so that the object holds
exactly the letters the account counts).  Each line is ``DeadLetter.export_record``: the body,
the message attributes in SendMessage's form (binary values base64-encoded), the error code and
reason, the original send time and the S3 keys referred to; enough to archive a letter or to send
it again.  Letters are held during the scan and released at its end, as by a dry run.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import IO, Any
from urllib.parse import urlparse

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from tools.ops.dead_letters import DeadLetter
from tools.ops.exceptions import AwsCallFailed, InvalidRequest
from tools.ops.dlq_scan import DlqScan, ScanPlan


class LetterSink:
    """Where exported letters go: a local file, stdout, or an S3 object (uploaded at close)."""

    def __init__(self, output: str, s3: Any | None = None) -> None:
        self.output = output
        self.bucket, self.key = _s3_location(output)
        if self.bucket and s3 is None:
            raise InvalidRequest("an s3:// output needs an S3 client")
        self._s3 = s3
        self._stream: IO[str] | None = None
        if not self.to_stdout:
            self._open()  # a path that cannot be written fails now, before the scan

    @property
    def to_stdout(self) -> bool:
        return self.output == "-"

    def write(self, record: dict[str, Any]) -> None:
        stream = self._open()
        stream.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush; for S3, upload the lines written (an empty object when there were none)."""
        stream = self._open()
        if self.to_stdout:
            stream.flush()
            return
        if not self.bucket:
            stream.close()
            return
        stream.flush()
        try:
            self._s3.upload_file(stream.name, self.bucket, self.key,
                                 ExtraArgs={"ContentType": "application/x-ndjson"})
        except (ClientError, BotoCoreError, OSError, S3UploadFailedError) as exc:
            # boto3's transfer wraps the ClientError without chaining it: name it as the cause,
            # so the exit code follows AWS's answer (a missing bucket is the operator's to fix)
            cause = exc.__context__ if isinstance(exc, S3UploadFailedError) else exc
            raise AwsCallFailed(f"upload to {self.output} failed: {exc}") from (cause or exc)
        finally:
            stream.close()

    def _open(self) -> IO[str]:
        if self._stream is None:
            if self.to_stdout:
                self._stream = sys.stdout
            elif self.bucket:
                self._stream = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in close())
                    "w", encoding="utf-8", suffix=".jsonl", delete=True)
            else:
                try:
                    self._stream = open(self.output, "w", encoding="utf-8")  # noqa: SIM115
                except OSError as exc:
                    raise InvalidRequest(f"cannot write {self.output}: {exc.strerror}") from None
        return self._stream


class Exporter(DlqScan):
    """A scan that writes what it selects to a ``LetterSink`` and leaves the DLQ as it was."""

    command = "dlq export"
    verb = "exported"
    mutates = False

    def __init__(self, sqs: Any, plan: ScanPlan, sink: LetterSink | None, **kwargs: Any) -> None:
        super().__init__(sqs, plan, **kwargs)
        if sink is None and not plan.dry_run:
            raise InvalidRequest("dlq export needs an output: a file, - or s3://bucket/key")
        self.sink = sink

    def _act(self, letters: list[DeadLetter]) -> None:
        now = self._clock()
        for letter in letters:
            self.sink.write(letter.export_record(now))
            self._hold(letter)
        self._done(len(letters))

    def _finish(self) -> None:
        if self.sink is None or self.plan.dry_run:
            return
        try:
            self.sink.close()
        except AwsCallFailed:
            self._counts["done"] = 0  # nothing reached the bucket: the account must not say so
            raise

    def _target(self) -> dict[str, Any]:
        return {"output": None if self.sink is None else self.sink.output}


def _s3_location(output: str) -> tuple[str | None, str | None]:
    if not output.startswith("s3://"):
        return None, None
    parsed = urlparse(output)
    key = parsed.path.lstrip("/")
    if not parsed.netloc or not key or key.endswith("/"):
        raise InvalidRequest(f"not an S3 object URL: {output} (use s3://bucket/key.jsonl)")
    return parsed.netloc, key
