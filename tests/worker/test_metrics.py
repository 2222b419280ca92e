"""CloudWatch EMF records on stdout."""

import json
import threading

from worker.metrics import Metrics


def test_records_from_concurrent_threads_stay_one_per_line(capfd):
    # Two threads writing to a real file descriptor (capfd), as replica threads and the event
    # loop do on the worker's stdout: every line must be one whole record.
    metrics = Metrics(True, "us-east-1")

    def report(replica: int) -> None:
        for _ in range(2000):
            metrics.batch(replica, real_rows=1, batch_size=2, seconds=0.01)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert len(records) == 4000
    assert sorted({r["Replica"] for r in records}) == ["0", "1"]
    assert all(r["BatchFill"] == 50.0 for r in records)
