"""The embedded stack over TLS: the upload bucket's TLS-only policy is enforced by the request's
real scheme (refused over HTTP, allowed over HTTPS), and SQS keeps RedriveAllowPolicy."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.exceptions import ClientError

from tools.lab.embedded_aws import TlsEmbeddedAws, free_port
from tools.lab.embedded_aws.moto_patches import SchemeAware
from worker.aws import boto3_client

TLS_ONLY = {"Version": "2012-10-17", "Statement": [{
    "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
    "Resource": ["arn:aws:s3:::tls-only-uploads", "arn:aws:s3:::tls-only-uploads/*"],
    "Condition": {"Bool": {"aws:SecureTransport": ["false"]}}}]}


@pytest.fixture(scope="module")
def tls_aws(tmp_path_factory):
    with TlsEmbeddedAws(tmp_path_factory.mktemp("tls")) as aws:
        yield aws


@pytest.fixture()
def plain_endpoint(tls_aws):
    """The same moto backends, also served over plain HTTP (what a client without TLS reaches)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    port = free_port("127.0.0.1")
    server = make_server("127.0.0.1", port, SchemeAware(DomainDispatcherApplication(
        create_backend_app)), threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join()


def _client(service, endpoint, ca=None):
    return boto3_client(service, "us-east-1", endpoint, verify=ca)


def test_tls_only_bucket_policy_refuses_http_and_allows_https(tls_aws, plain_endpoint):
    https = _client("s3", tls_aws.endpoint_url, str(tls_aws.tls.ca_bundle))
    https.create_bucket(Bucket="tls-only-uploads")
    https.put_bucket_policy(Bucket="tls-only-uploads", Policy=json.dumps(TLS_ONLY))

    https.put_object(Bucket="tls-only-uploads", Key="clip.mp4", Body=b"over tls")
    assert https.get_object(Bucket="tls-only-uploads", Key="clip.mp4")["Body"].read() == (
        b"over tls")
    http = _client("s3", plain_endpoint)
    with pytest.raises(ClientError) as refused:
        http.put_object(Bucket="tls-only-uploads", Key="plain.mp4", Body=b"over http")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    keys = [o["Key"] for o in https.list_objects_v2(Bucket="tls-only-uploads")["Contents"]]
    assert keys == ["clip.mp4"]


def test_clients_that_do_not_trust_the_ca_are_refused(tls_aws):
    untrusting = _client("sqs", tls_aws.endpoint_url, ca=None)
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.list_queues()


def test_redrive_allow_policy_is_kept_and_removed(tls_aws):
    sqs = _client("sqs", tls_aws.endpoint_url, str(tls_aws.tls.ca_bundle))
    url = sqs.create_queue(QueueName="redrive-allow")["QueueUrl"]
    policy = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": ["arn:aws:sqs:x"]})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": policy})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedriveAllowPolicy"])
    assert got["Attributes"] == {"RedriveAllowPolicy": policy}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": ""})
    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "RedriveAllowPolicy" not in everything and everything["QueueArn"].endswith(
        ":redrive-allow")
