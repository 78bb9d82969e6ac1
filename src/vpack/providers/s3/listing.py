"""ListObjectsV2 without botocore, for scans.

Two costs made this worth a second way to list:

- A `vpack sync` sent its first request 0.6 s after it started; 0.2 s of that was
  importing botocore and making its client, while the store sat idle. A scan's
  listing now leaves without them (and its reads then need no boto3: `get.py`).
- botocore reads a 1,000-key page in about 30 ms of CPU; ElementTree's C parser
  and the fields in 4-9 ms. Every scan lists the whole selection again, so a bucket of a million
  keys cost half a minute of CPU per rescan in parsing alone.

The request is S3's documented one (Amazon S3 API Reference, ListObjectsV2):
`GET {bucket}?list-type=2&prefix=P&max-keys=N&encoding-type=url[&continuation-token=T]`,
signed with SigV4 (`sigv4.py`) for the configured region. With `encoding-type=url` S3
sends keys URL-encoded (XML 1.0 cannot carry every character a key may hold), and
they are decoded as botocore decodes them.

Used only where the bucket's URL follows from its settings alone (`bucket_url`):
a custom endpoint with path-style addressing, or AWS itself for a bucket whose name
is one DNS label. Other set-ups list through boto3, whose endpoint rules cover them.
The store is reached as botocore would reach it: proxies as urllib reads the
environment (botocore's own rule), the CA bundle of AWS_CA_BUNDLE or else certifi's
(botocore's default), the same timeouts.

Only a 200 carrying a listing is taken. Anything else (an error, a redirect to the
bucket's real region, a certificate libcurl refused, a body that does not parse)
returns None: the caller lists through boto3, which reports the failure as it always
does.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit
from urllib.request import getproxies, proxy_bypass
from xml.etree.ElementTree import ParseError, fromstring

import certifi
import pycurl

from vpack.providers.s3.curl import CurlPool, Transport
from vpack.providers.s3.sigv4 import GetSigner, Keys, host_header

log = logging.getLogger(__name__)

# A bucket name that can be the first label of a host name (no dots, which would
# break the wildcard certificate of s3.<region>.amazonaws.com).
_ONE_LABEL = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# Regions of the standard AWS partition (not China's, GovCloud's or the isolated ones,
# whose host names differ).
_AWS_REGION = re.compile(r"(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d+")


def bucket_url(endpoint_url: str | None, path_style: bool, bucket: str, region: str) -> str | None:
    """The bucket's URL, where its settings alone decide it; None where boto3's
    endpoint rules must (virtual-host addressing on a custom endpoint, which depends
    on the host; dotted bucket names; regions outside the standard partition)."""
    if endpoint_url:
        if not path_style:
            return None
        return f"{endpoint_url.rstrip('/')}/{bucket}"
    if path_style or not _ONE_LABEL.fullmatch(bucket) or not _AWS_REGION.fullmatch(region):
        return None
    return f"https://{bucket}.s3.{region}.amazonaws.com"


def environment_transport(url: str, connect_timeout: float, read_timeout: float) -> Transport:
    """How botocore would reach `url` with no settings of its own: through the proxy
    the environment names for its scheme unless NO_PROXY exempts the host (urllib's
    reading, which botocore uses), checking certificates against AWS_CA_BUNDLE or
    certifi's bundle."""
    parts = urlsplit(url)
    try:
        exempt = bool(proxy_bypass(parts.netloc))
    except Exception:  # an unreadable NO_PROXY: botocore then does not exempt either
        exempt = False
    proxy = None if exempt else getproxies().get(parts.scheme)
    if proxy and "://" not in proxy:
        proxy = "http://" + proxy  # as botocore reads "host:port"
    ca_bundle = os.environ.get("AWS_CA_BUNDLE") or certifi.where()
    return Transport(connect_timeout, read_timeout, proxy, ca_bundle)


class DirectList:
    """Signed ListObjectsV2 requests to one bucket, through libcurl."""

    def __init__(self, url: str, region: str, keys: Keys, transport: Transport) -> None:
        parts = urlsplit(url)
        self._url = url if parts.path else url + "/"
        self._path = parts.path or "/"  # what the signature covers
        self._signer = GetSigner(host_header(parts.scheme, parts.hostname, parts.port), region)
        self._keys = keys
        self._pool = CurlPool(transport)
        self.objects = url.rstrip("/") + "/"  # an object's URL: this and its quoted key
        self.transport = transport

    def page(self, prefix: str, token: str | None, max_keys: int) -> dict[str, Any] | None:
        """One page of keys under `prefix`, shaped as boto3's answer (Contents,
        IsTruncated, NextContinuationToken); None when boto3 must list instead."""
        params = {
            "encoding-type": "url",
            "list-type": "2",
            "max-keys": str(max_keys),
            "prefix": prefix,
        }
        if token:
            params["continuation-token"] = token
        query = canonical_query(params)
        headers = self._signer.headers(self._path, self._keys, {}, query=query)
        curl, body, _ = self._pool.get(f"{self._url}?{query}", headers)
        try:
            curl.perform()
            status = curl.getinfo(pycurl.RESPONSE_CODE)
        except pycurl.error as exc:
            log.debug("listing %s through libcurl failed: %s", self._url, exc)
            return None
        finally:
            self._pool.give(curl)
        if status != 200:
            return None
        return parse_listing(b"".join(body))

    def close(self) -> None:
        self._pool.close()


def canonical_query(params: dict[str, str]) -> str:
    """The canonical query string of SigV4, which is also sent as it is signed: names
    in order, everything but unreserved characters percent-encoded."""
    return "&".join(f"{name}={quote(params[name], safe='-_.~')}" for name in sorted(params))


def parse_listing(body: bytes) -> dict[str, Any] | None:
    """A ListObjectsV2 answer as boto3 shapes it (timestamps left as sent); None when
    the body is not one."""
    try:
        # From a store the user named, so not trusted: but expat (2.4.1 and later)
        # refuses the entity-expansion bombs, and ElementTree never fetches external
        # entities (Python docs, "XML vulnerabilities"). botocore reads S3's answers
        # with the same parser. defusedxml's checks doubled the parse time.
        root = fromstring(body)  # noqa: S314
    except ParseError:
        return None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag != ns + "ListBucketResult":
        return None
    decode = unquote_plus if root.findtext(ns + "EncodingType") == "url" else _same
    contents: list[dict[str, Any]] = []
    try:
        for entry in root.iterfind(ns + "Contents"):
            item: dict[str, Any] = {
                "Key": decode(entry.findtext(ns + "Key") or ""),
                "ETag": entry.findtext(ns + "ETag"),
                "Size": int(entry.findtext(ns + "Size") or 0),
                "LastModified": entry.findtext(ns + "LastModified"),
            }
            storage = entry.findtext(ns + "StorageClass")
            if storage:
                item["StorageClass"] = storage
            contents.append(item)
    except ValueError:  # a size that is no number: not a listing to trust
        return None
    listing: dict[str, Any] = {
        "Contents": contents,
        "IsTruncated": root.findtext(ns + "IsTruncated") == "true",
    }
    token = root.findtext(ns + "NextContinuationToken")
    if token:
        listing["NextContinuationToken"] = token
    return listing


def _same(text: str) -> str:
    return text
