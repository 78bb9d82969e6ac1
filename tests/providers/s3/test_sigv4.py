"""SigV4 for plain GETs: AWS's own worked examples, and botocore's signer as a second opinion."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from vpack.providers.s3.get import _signed_region
from vpack.providers.s3.listing import canonical_query
from vpack.providers.s3.sigv4 import GetSigner, Keys, host_header


def test_the_get_object_example_of_the_s3_api_reference() -> None:
    """Amazon S3 API Reference, "Signature Calculations for the Authorization Header:
    Transferring Payload in a Single Chunk", Example: GET Object."""
    signer = GetSigner("examplebucket.s3.amazonaws.com", "us-east-1")
    keys = Keys("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    headers = signer.headers(
        "/test.txt", keys, {"Range": "bytes=0-9"}, now=datetime(2013, 5, 24, tzinfo=UTC)
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert headers["x-amz-date"] == "20130524T000000Z"
    assert headers["range"] == "bytes=0-9"
    assert "host" not in headers, "the HTTP client sends Host itself"


def test_the_list_objects_example_of_the_s3_api_reference() -> None:
    """The same page, Example: GET Bucket (List Objects): a query string, signed
    sorted by name."""
    signer = GetSigner("examplebucket.s3.amazonaws.com", "us-east-1")
    keys = Keys("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    query = canonical_query({"prefix": "J", "max-keys": "2"})
    assert query == "max-keys=2&prefix=J"
    headers = signer.headers("/", keys, {}, now=datetime(2013, 5, 24, tzinfo=UTC), query=query)
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    )


def test_listing_signatures_match_botocores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefixes with slashes, spaces and unicode, and a continuation token with
    '+', '/' and '=': the query as we send it, signed both ways."""
    when = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    signer = GetSigner("127.0.0.1:9000", "us-east-1")
    keys = Keys("AKIAEXAMPLE", "secret/+key")
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: when.replace(tzinfo=None))
    for prefix, token in [
        ("footage/Cam 1/", None),
        ("Kamera-ü/видео~(1)/", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+x"),
        ("", "token"),
    ]:
        params = {"list-type": "2", "prefix": prefix, "max-keys": "1000", "encoding-type": "url"}
        if token:
            params["continuation-token"] = token
        query = canonical_query(params)
        ours = signer.headers("/bench", keys, {}, now=when, query=query)
        request = AWSRequest(method="GET", url=f"http://127.0.0.1:9000/bench?{query}")
        S3SigV4Auth(Credentials("AKIAEXAMPLE", "secret/+key"), "s3", "us-east-1").add_auth(request)
        assert ours["authorization"] == request.headers["Authorization"].replace(", ", ","), prefix


@pytest.mark.parametrize(
    ("when", "token"),
    [
        (datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC), None),
        (datetime(2026, 11, 25, 0, 0, 1, tzinfo=UTC), "session-token/with+odd=chars"),
    ],
)
def test_signatures_match_botocores(
    monkeypatch: pytest.MonkeyPatch, when: datetime, token: str | None
) -> None:
    """Keys that need escaping, a port in the host, If-Match and Range, a session token,
    and a new day (a new signing key): the same request signed both ways."""
    signer = GetSigner("nas.local:9000", "eu-west-3")
    keys = Keys("AKIAEXAMPLE", "secret/+key", token)
    extra = {"If-Match": '"0a1b2c"', "Range": "bytes=5-"}
    signer.headers("/warm-up", keys, extra, now=datetime(2026, 11, 23, tzinfo=UTC))
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: when.replace(tzinfo=None))
    for key in ("Cam 1/ü~x (2).mp4", "../escape.mp4", "/double//slash.mp4", "a+b=c&d.mp4"):
        path = "/cams/" + quote(key, safe="/~")
        ours = signer.headers(path, keys, extra, now=when)
        request = AWSRequest(method="GET", url=f"http://nas.local:9000{path}", headers=extra)
        S3SigV4Auth(Credentials("AKIAEXAMPLE", "secret/+key", token), "s3", "eu-west-3").add_auth(
            request
        )
        # botocore writes ", " between the parts, AWS's example ","; both are valid
        theirs = request.headers["Authorization"].replace(", ", ",")
        assert ours["authorization"] == theirs, key
        assert ours["x-amz-content-sha256"] == request.headers["X-Amz-Content-SHA256"]
        assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")


def test_the_region_and_host_come_from_what_botocore_sent() -> None:
    signed = (
        "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261125/ap-southeast-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00"
    )
    assert _signed_region(signed) == "ap-southeast-1"
    assert _signed_region(signed.encode()) == "ap-southeast-1"
    assert _signed_region(None) is None
    assert _signed_region("AWS AKIAEXAMPLE:c2lnbmF0dXJl") is None, "SigV2: not ours to sign"
    sts = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261125/x/sts/aws4_request"
    assert _signed_region(sts) is None, "another service's scope"
    assert host_header("https", "bucket.s3.amazonaws.com", 443) == "bucket.s3.amazonaws.com"
    assert host_header("http", "127.0.0.1", 9000) == "127.0.0.1:9000"
    assert host_header("http", "::1", 80) == "[::1]"
