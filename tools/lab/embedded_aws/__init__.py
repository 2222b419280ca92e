"""The embedded AWS stack (the lab's, never shipped): moto in server mode on loopback, provisioned
like one region of infra/.  This is its one public entry; the modules behind it:

- ``servers``: the endpoint in a thread, a child process (``python -m tools.lab.embedded_aws``),
  or over HTTPS with a throw-away CA (trustme);
- ``moto_patches``: every change made to moto's behaviour, each saying which AWS behaviour it
  restores;
- ``stack``: one region's bucket, queues, topic and tap queue, and reading verdicts back.
"""

from tools.lab.embedded_aws.servers import (
    EmbeddedAws,
    EmbeddedAwsProcess,
    TlsEmbeddedAws,
    TlsFiles,
    free_port,
    make_certificates,
)
from tools.lab.embedded_aws.stack import StackInfo, TapMessage, drain_tap, provision

__all__ = ["EmbeddedAws", "EmbeddedAwsProcess", "StackInfo", "TapMessage", "TlsEmbeddedAws",
           "TlsFiles", "drain_tap", "free_port", "make_certificates", "provision"]
