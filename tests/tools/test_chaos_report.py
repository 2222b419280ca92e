"""The chaos report holds typed verdicts against the uploads: settled, duplicated, lost, unknown."""

from __future__ import annotations

import dataclasses

from model.api import ModelIdentity, ModelOutput
from tools.lab.chaos.report import Leftover, Uploaded, analyse
from worker import verdict as v
from worker.records import Job

CTX = v.Context("us-east-1", "w/1", ModelIdentity("m", "1", "torch", "none", True, "p"))
RUN_FACTS = dict(sigkills=1, sigterms=0, deaths=0, unclean_sigterm_exits=0, workers_started=2,
                 faults_injected={}, calls={}, faults_by_type={}, fault_rate=0.0, wall_s=1.0,
                 timed_out=False, unexpected_errors_logged=0)


def verdict_for(key: str, version: str, decision: str = "allow") -> v.Verdict:
    return v.ok_verdict(Job("b", key, version), v.VideoFacts(etag="e"),
                        ModelOutput((), decision), CTX, {})


def test_the_report_reads_outcomes_and_keys_from_the_verdicts():
    uploaded = [Uploaded("b", "a.mp4", "1", "clip"), Uploaded("b", "bad.mp4", "1", "truncate"),
                Uploaded("b", "lost.mp4", "1", "clip"), Uploaded("b", "waiting.mp4", "1", "clip")]
    a = verdict_for("a.mp4", "1")
    bad = v.error_verdict(Job("b", "bad.mp4", "1"), v.VideoFacts(), "undecodable", "x", CTX, {})
    verdicts = [a, dataclasses.replace(a, worker_id="w/2"), bad, verdict_for("other.mp4", "1")]
    waiting = Leftover("queue", "redrive", None, False, (("b", "waiting.mp4"),))
    report = analyse(uploaded, verdicts, [waiting], poison_sent=0, **RUN_FACTS)
    assert (report.settled, report.duplicates, report.inconsistent) == (2, 1, 0)
    assert (report.lost, report.unknown_verdicts, report.idempotency_keys) == (1, 1, 2)
    assert report.outcomes == {"ok allow": 1, "error undecodable": 1}
    assert report.outcomes_by_kind["clip"] == {"ok allow": 1, "unsettled": 2}
    assert not report.ok and any("1 uploads lost" in p for p in report.problems)


def test_two_decisions_for_one_object_version_break_the_promise():
    uploaded = [Uploaded("b", "a.mp4", "1", "clip")]
    verdicts = [verdict_for("a.mp4", "1"), verdict_for("a.mp4", "1", decision="block")]
    report = analyse(uploaded, verdicts, [], poison_sent=0, **RUN_FACTS)
    assert report.inconsistent == 1 and not report.ok
