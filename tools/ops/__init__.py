"""What operators run and what ships to instances: the `modfleet` CLI and its commands, replay
and dead-letter tools, status, enqueue, submit, the wheelhouse.  It never imports the lab
(tools/lab); tests/test_layout.py checks that.
"""
