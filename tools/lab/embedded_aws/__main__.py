"""``python -m tools.lab.embedded_aws HOST PORT``: serve the embedded stack until SIGTERM."""

import sys

from tools.lab.embedded_aws.servers import serve_until_terminated

serve_until_terminated(sys.argv[1], int(sys.argv[2]))
