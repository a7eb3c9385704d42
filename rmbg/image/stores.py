"""Images in object stores and other file systems named by URI (s3://,
gs://, hdfs://, file://), read through pyarrow's file systems: pyarrow comes
with Ray Data, and its wheels carry S3 and GCS support. Credentials come from
the usual places (AWS_* variables, ~/.aws, GOOGLE_APPLICATION_CREDENTIALS).

Only imported when such a URI is given; http(s) URLs are rmbg.image.fetch's.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidImageError

MAX_BYTES = 256 * 2**20  # one image file; the pixel limit still applies when it decodes


def _filesystem(uri: str) -> tuple[Any, str]:
    try:
        from pyarrow import fs
    except ImportError:
        raise InvalidImageError(
            f"Reading {uri.split('://')[0]}:// needs pyarrow: pip install pyarrow (it comes with ray[data])."
        ) from None
    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid / ArrowNotImplementedError / OSError
        raise InvalidImageError(f"{uri}: this file system cannot be used here ({exc}).") from None
    return filesystem, str(path)


def read_uri(uri: str) -> bytes:
    """The bytes of one file named by a URI."""
    filesystem, path = _filesystem(uri)
    try:
        info = filesystem.get_file_info(path)
        if info.size is not None and info.size > MAX_BYTES:
            raise InvalidImageError(f"{uri} is {info.size / 2**20:.0f} MB, over {MAX_BYTES // 2**20} MB.")
        with filesystem.open_input_file(path) as stream:
            return bytes(stream.readall())
    except InvalidImageError:
        raise
    except FileNotFoundError:
        raise InvalidImageError(f"No such file: {uri}") from None
    except Exception as exc:
        raise InvalidImageError(f"{uri} could not be read: {exc}") from None


def list_images(uri: str, suffixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(file URI, path relative to `uri`) of the image files at or under `uri`
    (a single file is its own entry, relative path = its name)."""
    from pyarrow import fs

    filesystem, root = _filesystem(uri)
    prefix = uri.split("://", 1)[0] + "://"  # "s3://", "file://" (+ the absolute path)
    info = filesystem.get_file_info(root)
    if info.type == fs.FileType.NotFound:
        return []
    if info.type == fs.FileType.File:
        return [(uri, root.rsplit("/", 1)[-1])]
    found = []
    for entry in filesystem.get_file_info(fs.FileSelector(root, recursive=True)):
        name = entry.path.rsplit("/", 1)[-1]
        if entry.type == fs.FileType.File and entry.path.lower().endswith(suffixes) and not name.startswith("."):
            rel = entry.path[len(root.rstrip("/")) + 1 :]
            found.append((prefix + entry.path, rel))
    return sorted(found)
