"""``gs://bucket/prefix`` as a :class:`~titanic_mlops.storage.Storage`, through
google-cloud-storage. Create-only writes and compare-and-swap are generation preconditions.
"""

from __future__ import annotations

import os

from titanic_mlops.storage import (
    Generation,
    NotFound,
    PreconditionFailed,
    Storage,
    check_key,
    check_prefix,
)


class GCSStorage(Storage):
    """``gs://bucket/prefix`` through google-cloud-storage (honours ``STORAGE_EMULATOR_HOST``)."""

    def __init__(self, uri: str, client: object | None = None) -> None:
        from google.cloud import storage as gcs  # imported here: local runs never need it

        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {uri!r}")
        self.uri = uri.rstrip("/")
        self.prefix = prefix.strip("/")
        self.client = client or _gcs_client(gcs)
        self.bucket = self.client.bucket(bucket)

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def read(self, key: str) -> bytes:
        return self.read_with_generation(key)[0]

    def read_with_generation(self, key: str) -> tuple[bytes, Generation]:
        from google.api_core import exceptions

        blob = self.bucket.blob(self._name(key))
        try:
            data = blob.download_as_bytes()
        except exceptions.NotFound as exc:
            raise NotFound(self.join(key)) from exc
        return data, str(blob.generation)

    def _upload(self, key: str, data: bytes, if_generation_match: int | None) -> None:
        from google.api_core import exceptions

        blob = self.bucket.blob(self._name(key))
        try:
            blob.upload_from_string(
                data,
                content_type="application/octet-stream",
                if_generation_match=if_generation_match,
            )
        except exceptions.PreconditionFailed as exc:
            raise PreconditionFailed(f"{self.join(key)}: generation precondition failed") from exc

    def write(self, key: str, data: bytes) -> None:
        self._upload(key, data, None)

    def create(self, key: str, data: bytes) -> None:
        self._upload(key, data, 0)  # generation 0 = "must not exist"

    def replace(self, key: str, data: bytes, generation: Generation) -> None:
        self._upload(key, data, int(generation))

    def list(self, prefix: str = "") -> list[str]:
        check_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        return sorted(self._key(b.name) for b in self.client.list_blobs(self.bucket, prefix=full))

    def exists(self, key: str) -> bool:
        return self.bucket.blob(self._name(key)).exists()

    def list_children(self, prefix: str) -> list[str]:
        check_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        blobs = self.client.list_blobs(self.bucket, prefix=full, delimiter="/")
        for _ in blobs.pages:  # prefixes are filled in while the pages are read
            pass
        return sorted(self._key(p) for p in blobs.prefixes)


def _gcs_client(gcs):
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "local-emulator")
        return gcs.Client(project=project, credentials=AnonymousCredentials())
    return gcs.Client()
