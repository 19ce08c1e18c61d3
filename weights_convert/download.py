"""Downloading the canonical checkpoints (SPEC §1): resumable, checksummed, never half-written.

A download streams into ``DEST.part``; an interrupted one is resumed from there with an HTTP
Range request (or started afresh when the server ignores Range). Only a complete file that
looks like a PyTorch checkpoint (a zip or pickle file: Ecoset's has no published checksum, and
a server can answer with an error or consent page) and whose checksum matches (when one is
known) is renamed to ``DEST``.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ais_jax import storage, weights
from weights_convert.checkpoint import foreign_file_kind, sha256_file


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a checkpoint is published, and what is known of its sha256."""

    url: str
    filename: str
    sha256_prefix: str | None = None  # torchvision's file names carry the first 8 hex digits


def _torchvision(filename: str) -> Source:
    """A torchvision checkpoint: its file name ends in the first 8 hex digits of its sha256."""
    return Source(f"https://download.pytorch.org/models/{filename}", filename,
                  filename.rsplit("-", 1)[1].removesuffix(".pth"))


# Mehrer et al. 2021 publish the Ecoset networks on OSF (project kzxfg) with no checksum: those
# downloads are checked only to be a PyTorch checkpoint (then the conversion checks every tensor).
SOURCES = {
    "imagenet": _torchvision("vgg16-397923af.pth"),
    "ecoset": Source("https://osf.io/z5uf3/download", "vgg16_ecoset.pth"),
    "vgg19_imagenet": _torchvision("vgg19-dcbb9e9d.pth"),
    "alexnet_imagenet": _torchvision("alexnet-owt-7be5be79.pth"),
    "alexnet_ecoset": Source("https://osf.io/xtdf4/download", "alexnet_ecoset.pth"),
    "resnet50_imagenet": _torchvision("resnet50-0676ba61.pth"),
    "resnet50_ecoset": Source("https://osf.io/abfq4/download", "resnet50_ecoset.pth"),
}
SOURCES |= {alias: SOURCES[name] for alias, name in weights.MODEL_ALIASES.items()}


class DownloadError(OSError):
    """A download failed; the message names the URL and says whether it can be resumed."""


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _checksum_problem(path: Path, sha256: str | None, sha256_prefix: str | None) -> str | None:
    """Why ``path`` fails the known checksum, or None when it matches (or none is known)."""
    if sha256 is None and sha256_prefix is None:
        return None
    digest = sha256_file(path)
    if sha256 is not None:
        return None if digest == sha256.lower() else f"sha256 {digest}, expected {sha256}"
    if digest.startswith(sha256_prefix.lower()):
        return None
    return f"sha256 {digest} does not start with the expected {sha256_prefix}"


def _foreign_start(path: Path) -> tuple[bytes, str] | None:
    """``(first bytes, what they look like)`` if ``path`` does not begin as a PyTorch
    checkpoint (`weights_convert.checkpoint.foreign_file_kind`), else None."""
    with open(path, "rb") as f:
        head = f.read(512)
    kind = foreign_file_kind(head)
    return None if kind is None else (head[:48], kind)


def _total_from_content_range(value: str | None) -> int | None:
    match = re.fullmatch(r"bytes (?:\d+-\d+|\*)/(\d+)", (value or "").strip())
    return int(match.group(1)) if match else None


def _open(url: str, offset: int, timeout: float):
    """urlopen with a Range header from ``offset``; returns None for 416 (nothing left)."""
    request = urllib.request.Request(url, headers={"User-Agent": "ais_jax"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        with e:
            if e.code == 416 and offset:
                total = _total_from_content_range(e.headers.get("Content-Range"))
                if total == offset:
                    return None
                raise DownloadError(
                    f"{url}: HTTP 416: the partial download holds {offset} bytes, the remote file "
                    f"{total}; delete the .part file and try again"
                ) from e
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(
            f"{url}: cannot connect ({getattr(e, 'reason', e)}); check the network, or download "
            "the file by hand and pass it with --src"
        ) from e


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    sha256_prefix: str | None = None,
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
) -> Path:
    """Downloads ``url`` to ``dest``, resuming ``dest.part`` and verifying the checksum.

    Args:
      url: http(s) URL.
      dest: the final file; an existing one is verified and returned without downloading.
      sha256: the full expected hex digest, if known.
      sha256_prefix: the expected digest's first hex digits, if only those are known.
      chunk_size: bytes per read.
      timeout: seconds to wait for the server on connect and on each read.

    Returns:
      ``dest`` as a `Path`, complete and verified.

    Raises:
      DownloadError: HTTP errors, connection failures, a transfer cut short (the partial file
        is kept in ``dest.part`` for the next call to resume).
      ais_jax.storage.WriteError: ``dest.part`` or ``dest`` cannot be written (full disk,
        read-only folder); what was received is kept in ``dest.part``.
      ValueError: a file that is not a PyTorch checkpoint (e.g. an HTML page) or fails the
        checksum (a new download is deleted and ``dest`` is not created; an existing ``dest`` is
        left for the user to delete).
    """
    dest = Path(dest)
    if dest.is_file():
        foreign = _foreign_start(dest)
        if foreign is not None:
            head, kind = foreign
            raise ValueError(f"{dest}: not a PyTorch checkpoint (looks like {kind}; it starts "
                             f"with {head!r}, not a zip or pickle file); delete {dest} and rerun "
                             "with --download")
        problem = _checksum_problem(dest, sha256, sha256_prefix)
        if problem:
            raise ValueError(f"{dest}: checksum mismatch ({problem}); delete it and try again")
        return dest
    part = _part_path(dest)
    with storage.writing(part):
        dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    response = _open(url, offset, timeout)
    content_type = "an unknown Content-Type"
    if response is not None:
        content_type = f"Content-Type {response.headers.get('Content-Type', 'unknown')!r}"
        with response:
            if response.status == 206:
                start = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
                if start is None or int(start.group(1)) != offset:
                    raise DownloadError(
                        f"{url}: the server resumed at the wrong place "
                        f"(Content-Range {response.headers.get('Content-Range')!r}, asked for "
                        f"byte {offset}); delete {part} and try again"
                    )
                total = _total_from_content_range(response.headers.get("Content-Range"))
            else:  # 200: the server ignored Range and sends the whole file
                offset = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length is not None else None
            _stream(response, part, offset, total, url, chunk_size, desc=dest.name)
    foreign = _foreign_start(part)
    if foreign is not None:
        head, kind = foreign
        size = part.stat().st_size
        part.unlink()  # complete but not a checkpoint: resuming cannot repair it
        raise ValueError(
            f"{url}: received {size} bytes with {content_type}, starting {head!r}: not a PyTorch "
            f"checkpoint (looks like {kind}), probably an error or consent page; nothing was "
            f"saved as {dest}. Download the file in a browser and pass it with --src"
        )
    problem = _checksum_problem(part, sha256, sha256_prefix)
    if problem:
        part.unlink()  # complete but wrong: resuming cannot repair it
        raise ValueError(f"{url}: checksum mismatch ({problem}); the download was deleted")
    with storage.writing(dest):
        os.replace(part, dest)
    return dest


def _stream(response, part: Path, offset: int, total: int | None, url: str,
            chunk_size: int, desc: str) -> None:
    """Appends the response body to ``part`` (truncated to ``offset`` first), with progress."""
    received = offset
    cut = None
    # Only the network side of the loop is a resumable cut; a failed write (full disk,
    # read-only folder) is a WriteError naming the .part file.
    with storage.writing(part), open(part, "r+b" if offset else "wb") as f, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
        desc=desc,
    ) as bar:
        f.truncate(offset)
        f.seek(offset)
        while True:
            try:
                chunk = response.read(chunk_size)
            except (http.client.IncompleteRead, OSError) as e:
                cut = e
                break
            if not chunk:
                break
            f.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received > total:
        part.unlink()
        raise DownloadError(f"{url}: received {received} bytes, more than the announced {total}; "
                            "the download was deleted")
    if cut is not None or (total is not None and received != total):
        raise DownloadError(
            f"{url}: transfer cut short after {received} of {total or 'unknown'} bytes"
            f"{f' ({type(cut).__name__})' if cut else ''}; the partial file {part} is kept, "
            "run the same command again to resume"
        ) from cut


def fetch_checkpoint(model: str, directory: str | os.PathLike | None = None) -> Path:
    """Downloads the canonical checkpoint of ``model`` (SPEC §1) into the cache.

    Args:
      model: a key of `SOURCES` (``'imagenet'``, ``'alexnet_ecoset'``, ...).
      directory: where to keep it; default ``cache_dir()/downloads``.

    Returns:
      The local checkpoint file.
    """
    if model not in SOURCES:
        raise ValueError(
            f"no download known for {model!r}; downloadable: {', '.join(SOURCES)}"
        )
    source = SOURCES[model]
    directory = Path(directory) if directory is not None else storage.cache_dir() / "downloads"
    return download(source.url, directory / source.filename, sha256_prefix=source.sha256_prefix)
