"""Object storage: ``s3://`` and ``hdfs://`` locations for inputs, outputs and models;
and ``http(s)://`` addresses of input files.

poiflow reads and writes object storage through pyarrow's filesystems. Credentials and the
endpoint come from the usual AWS places: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
(or ``~/.aws/credentials``), ``AWS_REGION``, and ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` for an S3-compatible server that is not AWS (MinIO, S3Proxy, Ceph).
HDFS is read with hdfs-native (the ``hdfs`` extra: a client of HDFS's own protocol, with no
Java or ``libhdfs``), or else with pyarrow's ``libhdfs`` client where Hadoop's is installed;
``hdfs://host:port/path`` names the NameNode, ``hdfs:///path`` the Hadoop configuration's
default file system (``HADOOP_CONF_DIR``).

Stages work on local files: an input is fetched once into a download folder (again only
when the object changed), and an output folder is written locally and uploaded whole,
``run.json`` last, so a reader that sees ``run.json`` sees a complete output. A failed
upload removes what it had put.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

from poiflow.errors import InputError, OutputError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = [
    "REMOTE_SCHEMES",
    "TEMP_ROOT",
    "check_writable",
    "clear_stale",
    "exists",
    "fetch",
    "file_stamp",
    "filesystem",
    "is_remote",
    "link_or_copy",
    "object_stamp",
    "output_staging",
    "put_file",
    "put_folder",
    "read_bytes",
    "remote_fingerprint",
    "remove_fetched_before",
    "s3_endpoint",
    "s3_region",
]

REMOTE_SCHEMES: Final = ("s3", "s3a", "hdfs", "http", "https")
# Web addresses: inputs only, one file each (All the Places' outputs, a vendor's link).
_WEB_SCHEMES: Final = ("http", "https")
_WEB_TIMEOUT_S: Final = 60.0
# Where fetched inputs and outputs bound for object storage go when no cache folder is named.
TEMP_ROOT: Final = Path(tempfile.gettempdir()) / "poiflow"
_LAST: Final = "run.json"  # uploaded last: its presence says the folder is complete


def is_remote(location: str | Path) -> bool:
    """Whether ``location`` is an object-storage URI (``s3://``, ``s3a://``, ``hdfs://``)."""
    return isinstance(location, str) and urlparse(location).scheme in REMOTE_SCHEMES


def s3_endpoint() -> str | None:
    """The S3 endpoint of the environment (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``),
    or None for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def s3_region() -> str | None:
    """The AWS region of the environment (``AWS_REGION``, ``AWS_DEFAULT_REGION``)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def output_staging(uri: str, root: Path | None = None) -> Path:
    """The local folder an output bound for ``uri`` is written to before its upload (under
    ``root``, a cache folder, or a temporary one), after checking that ``uri`` can take it.

    Raises:
        OutputError: The bucket is not there or the endpoint cannot be reached.
    """
    check_writable(uri)
    key = hashlib.blake2b(uri.encode(), digest_size=8).hexdigest()
    return (root or TEMP_ROOT) / "outputs" / key


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of ``uri`` and the path within it.

    S3 takes its endpoint from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (plain
    ``http://`` for a server on the local network), and gives up on an unreachable one
    after a few seconds instead of retrying for minutes.
    """
    import pyarrow.fs as pafs

    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        endpoint = s3_endpoint()
        options: dict[str, object] = {
            "connect_timeout": 5,
            "request_timeout": 60,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=2),
            "region": s3_region(),
        }
        if endpoint:
            # A server that is not AWS may not know the integrity checksums AWS SDKs now
            # send by default: ask for them only where the operation needs them (the AWS
            # setting for S3-compatible servers), unless told otherwise.
            os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
            os.environ.setdefault("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
            target = urlparse(endpoint)
            options |= {"endpoint_override": target.netloc, "scheme": target.scheme or "https"}
        s3 = pafs.S3FileSystem(**options)
        return s3, f"{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme == "hdfs":
        return _hdfs(uri), parsed.path or "/"
    raise InputError(f"not an object-storage location (expected one of {REMOTE_SCHEMES})", path=uri)


HDFS_PORT: Final = 8020  # the NameNode's RPC port when a URI names none


def _hdfs(uri: str) -> pafs.FileSystem:
    """The HDFS of ``uri``, after making sure its NameNode answers: HDFS clients retry an
    unreachable one for minutes.

    Raises:
        OSError: The NameNode cannot be reached, or no HDFS client is installed.
    """
    import pyarrow.fs as pafs

    parsed = urlparse(uri)
    host, port = parsed.hostname, parsed.port or HDFS_PORT
    if host:
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as exc:
            raise OSError(f"the NameNode {host}:{port} cannot be reached ({exc})") from exc
    try:
        files = _hdfs_files()
    except ImportError:
        try:  # Hadoop's own client, through libhdfs and a JVM
            return pafs.HadoopFileSystem(host or "default", port if host else 0)
        except OSError as exc:
            raise OSError(
                "no HDFS client: install poiflow's hdfs extra (pip install 'poiflow[hdfs]'), "
                f"or Hadoop with libhdfs ({exc})"
            ) from exc
    return pafs.PyFileSystem(pafs.FSSpecHandler(files(host, port if host else None)))


@functools.cache
def _hdfs_files() -> type:
    """hdfs-native's fsspec file system, with each file's modification time where pyarrow
    looks for it (a changed input is fetched anew by its size and time), made afresh for
    each use."""
    from hdfs_native import FileStatus
    from hdfs_native.fsspec import HdfsFileSystem

    class Files(HdfsFileSystem):
        # Not kept in fsspec's cache of instances: fsspec empties that cache in a forked
        # child (Spark starts its JVM so), and dropping a client there waits forever on
        # the parent's I/O threads, which the child does not have.
        cachable = False

        def _convert_file_status(self, file_status: FileStatus) -> dict[str, Any]:
            info: dict[str, Any] = super()._convert_file_status(file_status)
            millis = int(info.get("modification_time") or 0)
            info["mtime"] = datetime.fromtimestamp(millis / 1000, tz=UTC)
            return info

    return Files


def read_bytes(uri: str) -> bytes:
    """The whole object at ``uri``.

    Raises:
        InputError: It cannot be read (missing, unreachable endpoint, bad credentials).
    """
    fs, path = _open(uri)
    try:
        with fs.open_input_stream(path) as stream:
            return bytes(stream.read())
    except OSError as exc:
        raise InputError(f"cannot read: {_cause(exc)}", path=uri) from exc


def remote_fingerprint(uri: str) -> str:
    """What identifies the content at ``uri`` without reading it: its size and time of
    every object (a file, or every file under a prefix)."""
    listing = _listing(uri)
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()[:16]


def fetch(uri: str, downloads: Path, companions: Sequence[str] = ()) -> Path:
    """A local copy of the file, or every file under the prefix, at ``uri``.

    Copies are kept in ``downloads`` by URI and content (size and time): fetching an
    unchanged object again costs one listing.

    Args:
        companions: Suffixes of the files that go with a file, fetched beside it where
            they are there: its name with each in place of its own suffix (a
            shapefile's ``.dbf``, ``.shx``, ``.prj``).

    Raises:
        InputError: Nothing is there, or it cannot be read (the cause is named).
    """
    clear_stale(downloads, ".tmp-*")  # a fetch killed outright left it half-fetched
    if urlparse(uri).scheme in _WEB_SCHEMES:
        return _fetch_web(uri, downloads, companions)
    listing = _listing(uri, companions)
    fs, base = filesystem(uri)
    key = hashlib.sha256(json.dumps([uri, listing], sort_keys=True).encode()).hexdigest()[:16]
    folder = downloads / key
    name = Path(base).name or "object"
    target = folder / name
    if (folder / ".complete").exists():
        return target
    partial = downloads / f".tmp-{key}-{os.getpid()}"
    partial.mkdir(parents=True, exist_ok=True)
    one_file = any(path == base for path, _, _ in listing)
    try:
        for path, _size, _mtime in listing:
            # A file and its companions keep their names; the files under a prefix keep
            # their places in it.
            local = partial / Path(path).name if one_file else partial / name
            if not one_file:
                local = local / Path(path).relative_to(base)
            local.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(path) as source, local.open("wb") as sink:
                while chunk := source.read(1 << 22):
                    sink.write(chunk)
    except OSError as exc:
        raise InputError(f"cannot read: {_cause(exc)}", path=uri) from exc
    (partial / ".complete").touch()
    if folder.exists():  # another run fetched it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
        return target
    partial.rename(folder)
    return target


def remove_fetched_before(downloads: Path, kept: Path) -> None:
    """Remove the copies in ``downloads`` that :func:`fetch` made before ``kept`` (a path
    it returned); later ones stay (another process may have fetched a newer version and
    be reading it), and so do those being fetched."""
    made = kept.parent.stat().st_mtime_ns
    for copy in downloads.iterdir():
        older = copy.is_dir() and copy.stat().st_mtime_ns < made
        if older and not copy.name.startswith(".tmp-"):
            shutil.rmtree(copy, ignore_errors=True)


def _fetch_web(url: str, downloads: Path, companions: Sequence[str] = ()) -> Path:
    """A local copy of the file at an ``http(s)://`` address, named as the address's last
    part, with those of its ``companions`` that are there (a 404 is none).

    The copy is kept by address and by what the server says of the file (its ETag, time
    and length, asked with HEAD): fetching it again while it is unchanged costs one
    request. A server that says none of them is asked for the file every time.

    Raises:
        InputError: The server cannot be reached, or answers with an error (named).
    """
    import shutil
    from urllib.parse import unquote

    path = urlparse(url).path
    name = unquote(path.rsplit("/", 1)[-1]) or "download"
    validators = _web_validators(url)
    key = hashlib.sha256(json.dumps([url, validators]).encode()).hexdigest()[:16]
    folder = downloads / key
    if validators and (folder / ".complete").exists():
        return folder / name
    partial = downloads / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        _download(url, partial / name, required=True)
        stem = url[: -len(Path(path).suffix)] if Path(path).suffix else url
        for suffix in companions:
            _download(stem + suffix, partial / (Path(name).stem + suffix), required=False)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / ".complete").touch()
    if folder.exists():  # fetched meanwhile, or fetched before without validators
        shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder / name


def _web_validators(url: str) -> list[str]:
    """What the server says identifies the file's content (ETag, Last-Modified,
    Content-Length), from a HEAD request; empty where it says none or refuses HEAD."""
    import urllib.error
    import urllib.request

    # Only http(s) addresses come here (fetch tells them by their scheme).
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=_WEB_TIMEOUT_S) as answer:  # noqa: S310
            headers = answer.headers
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the answer's connection
        return []  # the GET says why, if it fails too
    except (urllib.error.URLError, OSError):
        return []
    found = [headers.get(h) for h in ("ETag", "Last-Modified", "Content-Length")]
    return [value for value in found if value] if any(found[:2]) else []


def _download(url: str, target: Path, *, required: bool) -> None:
    """Stream ``url`` into ``target``; a missing file that is not ``required`` is skipped.

    Raises:
        InputError: The server cannot be reached, or answers with an error.
    """
    import urllib.error
    import urllib.request

    try:
        with (
            urllib.request.urlopen(url, timeout=_WEB_TIMEOUT_S) as answer,  # noqa: S310
            target.open("wb") as sink,
        ):
            while chunk := answer.read(1 << 20):
                sink.write(chunk)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the answer's connection
        target.unlink(missing_ok=True)
        if exc.code == 404 and not required:
            return
        raise InputError(f"cannot read: HTTP {exc.code} {exc.reason}", path=url) from exc
    except (urllib.error.URLError, OSError) as exc:
        target.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise InputError(f"cannot read: {reason}", path=url) from exc


def put_folder(local: Path, uri: str) -> None:
    """Upload every file of ``local`` under ``uri``, ``run.json`` last.

    Raises:
        OutputError: The upload failed (what it had put is removed again).
    """
    fs, base = _open(uri, output=True)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == _LAST)
    put: list[str] = []
    try:
        fs.create_dir(base, recursive=True)
        for file in files:
            path = f"{base}/{file.relative_to(local).as_posix()}"
            with file.open("rb") as source, fs.open_output_stream(path) as sink:
                while chunk := source.read(1 << 22):
                    sink.write(chunk)
            put.append(path)
    except OSError as exc:
        for path in put:
            with contextlib.suppress(OSError):
                fs.delete_file(path)
        raise OutputError(f"cannot write: {_cause(exc)}; nothing was left there", path=uri) from exc


def check_writable(uri: str) -> None:
    """Fail early, before any work, if the bucket of an output ``uri`` is not there or the
    endpoint cannot be reached.

    Raises:
        OutputError: The cause, with the URI.
    """
    import pyarrow.fs as pafs

    if urlparse(uri).scheme in _WEB_SCHEMES:
        raise OutputError(
            "a web address is read, not written: write to a folder, s3:// or hdfs://",
            path=uri,
        )
    fs, base = _open(uri, output=True)
    if urlparse(uri).scheme == "hdfs":
        return  # no buckets: the NameNode answered, and folders are made as needed
    bucket = base.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise OutputError(f"cannot write: {_cause(exc)}", path=uri) from exc
    if info.type == pafs.FileType.NotFound:
        raise OutputError(f"cannot write: no bucket '{bucket}'", path=uri)


def put_file(local: Path, uri: str) -> None:
    """Upload one file to ``uri``.

    Raises:
        OutputError: The upload failed.
    """
    fs, path = _open(uri, output=True)
    try:
        with local.open("rb") as source, fs.open_output_stream(path) as sink:
            while chunk := source.read(1 << 22):
                sink.write(chunk)
    except OSError as exc:
        raise OutputError(f"cannot write: {_cause(exc)}", path=uri) from exc


def object_stamp(uri: str) -> tuple[int, int] | None:
    """What tells one writing of the object at ``uri`` from another (its size and time,
    as :func:`file_stamp` tells a local file's); None where there is none.

    Raises:
        InputError: The storage cannot be read (the cause is named).
    """
    import pyarrow.fs as pafs

    fs, path = _open(uri)
    try:
        info = fs.get_file_info(path)
    except OSError as exc:
        raise InputError(f"cannot read: {_cause(exc)}", path=uri) from exc
    if info.type != pafs.FileType.File:
        return None
    return (int(info.size or 0), int(info.mtime_ns or 0))


def exists(uri: str) -> bool:
    """Whether an object is at ``uri``."""
    return object_stamp(uri) is not None


def _open(uri: str, *, output: bool = False) -> tuple[pafs.FileSystem, str]:
    error = OutputError if output else InputError
    try:
        return filesystem(uri)
    except OSError as exc:  # e.g. no Hadoop client for hdfs://
        raise error(f"cannot open: {_cause(exc)}", path=uri) from exc


def _listing(uri: str, companions: Sequence[str] = ()) -> list[tuple[str, int, int]]:
    """(path, size, mtime in ns) of the file at ``uri`` and of those of its ``companions``
    that are there, or of every file under it."""
    import pyarrow.fs as pafs

    fs, base = _open(uri)
    try:
        info = fs.get_file_info(base)
        if info.type == pafs.FileType.File:
            stem = base[: -len(Path(base).suffix)] if Path(base).suffix else base
            beside = fs.get_file_info([stem + suffix for suffix in companions])
            found = [info, *(i for i in beside if i.type == pafs.FileType.File)]
        elif info.type == pafs.FileType.Directory:
            found = [
                i
                for i in fs.get_file_info(pafs.FileSelector(base, recursive=True))
                if i.type == pafs.FileType.File
            ]
        else:
            found = []
    except OSError as exc:
        raise InputError(f"cannot read: {_cause(exc)}", path=uri) from exc
    if not found:
        raise InputError("no such object or prefix", path=uri)
    listed = sorted((i.path, int(i.size or 0), int(i.mtime_ns or 0)) for i in found)
    # Some servers list a "folder" as an empty object too: it is no file of its own.
    folders = {str(Path(path).parent) for path, _, _ in listed}
    return [entry for entry in listed if entry[0] not in folders]


def _cause(exc: BaseException) -> str:
    """The part of a storage error a person can act on, on one line."""
    text = " ".join(str(exc).split())
    for marker, meaning in (
        ("NETWORK_CONNECTION", "the endpoint cannot be reached"),
        ("Couldn't connect", "the endpoint cannot be reached"),
        ("ACCESS_DENIED", "access denied (check the credentials)"),
        ("InvalidAccessKeyId", "the access key is not known (check the credentials)"),
        ("SignatureDoesNotMatch", "the secret key does not match (check the credentials)"),
        ("NoSuchBucket", "no such bucket"),
    ):
        if marker in text:
            return f"{meaning} ({text[:200]})"
    return text[:300]


# A half-written file or folder's name ends in the id of the process writing it:
# ``NAME-PID``, or ``NAME.PID.tmp`` (with a second pass's ``.2``).
_WRITER: Final = re.compile(r"[-.](\d+)(?:\.tmp(?:\.\d+)?)?$")


def clear_stale(folder: Path, pattern: str) -> list[Path]:
    """Remove what ``pattern`` finds in ``folder`` that a process no longer alive left
    half-written (a process killed outright cannot remove its own); what a live
    process writes stays. Returns what was removed.

    Only what names its writer (``NAME-PID``, ``NAME.PID.tmp``) is looked at.
    """
    removed = []
    for path in sorted(folder.glob(pattern)):
        writer = _WRITER.search(path.name)
        if writer is None or _alive(int(writer.group(1))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells one writing of a file from another (its inode, size and time; a file
    replaced by a rename has another inode); None where there is none."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    except OverflowError:  # not a process id at all
        return False
    return True


def link_or_copy(file: Path, to: Path) -> None:
    """``file`` at ``to`` too: a hard link (no bytes copied), or a copy where ``to`` is on
    another file system."""
    try:
        os.link(file, to)
    except OSError:
        shutil.copyfile(file, to)
