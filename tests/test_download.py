"""Resumable, checksummed downloads, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_alexnet import TorchAlexNet
from torch_resnet50 import TorchResNet50
from torch_vgg import constant_state_dict

from ais_jax import weights
from weights_convert import __main__ as cli
from weights_convert import download as dl

# Begins as a zip file, as a checkpoint written by torch.save does.
PAYLOAD = b"PK\x03\x04" + np.random.default_rng(0).integers(0, 256, 300_000,
                                                             dtype=np.uint8).tobytes()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /file.pth; the server's attributes choose how well it behaves."""

    def do_GET(self):
        server = self.server
        server.requests.append(self.headers.get("Range"))
        if self.path != "/file.pth":
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.ranges:
            start = int(match.group(1))
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = server.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", server.content_type)
        self.end_headers()
        # Counted before writing: the client may finish reading before this thread runs on.
        server.sent += min(len(body), server.cut_after or len(body))
        # `cut_after` bytes of the body, then the connection closes short of Content-Length.
        self.wfile.write(body[: server.cut_after] if server.cut_after is not None else body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server():
    """A local server; tests set ``ranges``, ``cut_after``, ``payload``, ``content_type``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.ranges, httpd.cut_after, httpd.payload = True, None, PAYLOAD
    httpd.requests, httpd.sent, httpd.content_type = [], 0, "application/octet-stream"
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/file.pth"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def files(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in directory.iterdir()}


def test_complete_download_with_checksum(server, tmp_path):
    dest = dl.download(server.url, tmp_path / "sub" / "w.pth", sha256=SHA256, chunk_size=4096)
    assert dest.read_bytes() == PAYLOAD
    assert files(dest.parent) == {"w.pth": len(PAYLOAD)}
    assert server.requests == [None]
    # Present and verified: no second request.
    assert dl.download(server.url, dest, sha256_prefix=SHA256[:8]) == dest
    assert server.requests == [None]


def test_resumes_from_partial_file_with_range(server, tmp_path):
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD[:123_456])
    dest = dl.download(server.url, tmp_path / "w.pth", sha256_prefix=SHA256[:8])
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == ["bytes=123456-"]
    assert server.sent == len(PAYLOAD) - 123_456
    assert files(tmp_path) == {"w.pth": len(PAYLOAD)}


def test_server_without_range_support_restarts(server, tmp_path):
    server.ranges = False
    (tmp_path / "w.pth.part").write_bytes(b"x" * 1000)  # would corrupt the file if appended to
    dest = dl.download(server.url, tmp_path / "w.pth", sha256=SHA256)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == ["bytes=1000-"] and server.sent == len(PAYLOAD)


def test_complete_partial_file_is_finished_without_download(server, tmp_path):
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD)
    dest = dl.download(server.url, tmp_path / "w.pth", sha256=SHA256)
    assert dest.read_bytes() == PAYLOAD and server.sent == 0


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    with pytest.raises(ValueError, match="checksum mismatch.*does not start with the expected "
                                         "397923af"):
        dl.download(server.url, tmp_path / "w.pth", sha256_prefix="397923af")
    assert files(tmp_path) == {}


def test_connection_cut_short_keeps_part_for_resume(server, tmp_path):
    server.cut_after = 100_000
    with pytest.raises(dl.DownloadError, match="cut short.*run the same command again"):
        dl.download(server.url, tmp_path / "w.pth", sha256=SHA256, chunk_size=8192)
    assert "w.pth" not in files(tmp_path)
    part = (tmp_path / "w.pth.part").read_bytes()
    assert 0 < len(part) <= 100_000 and PAYLOAD.startswith(part)

    server.cut_after = None
    dest = dl.download(server.url, tmp_path / "w.pth", sha256=SHA256)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1] == f"bytes={len(part)}-"


def test_http_error_names_the_url(server, tmp_path):
    url = server.url.replace("file.pth", "missing.pth")
    with pytest.raises(dl.DownloadError, match=f"{re.escape(url)}: HTTP 404"):
        dl.download(url, tmp_path / "w.pth")
    assert files(tmp_path) == {}


def test_unreachable_server_says_what_to_do(tmp_path):
    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(dl.DownloadError, match="cannot connect.*--src"):
        dl.download(f"http://127.0.0.1:{port}/w.pth", tmp_path / "w.pth", timeout=5)
    assert files(tmp_path) == {}


def test_fetch_checkpoint_uses_canonical_sources(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(dl, "download", lambda url, dest, **kw: calls.append((url, dest, kw)))
    monkeypatch.setenv("AIS_JAX_CACHE", str(tmp_path))
    dl.fetch_checkpoint("imagenet")
    dl.fetch_checkpoint("ecoset")
    assert calls == [
        ("https://download.pytorch.org/models/vgg16-397923af.pth",
         tmp_path / "downloads" / "vgg16-397923af.pth", {"sha256_prefix": "397923af"}),
        ("https://osf.io/z5uf3/download", tmp_path / "downloads" / "vgg16_ecoset.pth",
         {"sha256_prefix": None}),
    ]
    with pytest.raises(ValueError, match="no download known for 'transalnet_dense'"):
        dl.fetch_checkpoint("transalnet_dense")


@pytest.mark.parametrize("magic", [b"PK\x03\x04", b"\x80\x02"])
def test_zip_and_legacy_pickle_checkpoints_are_accepted(server, tmp_path, magic):
    server.payload = magic + b"rest"
    dest = dl.download(server.url, tmp_path / "w.pth")
    assert dest.read_bytes() == magic + b"rest"


def test_html_page_is_not_saved_as_the_checkpoint(server, tmp_path):
    # No checksum is known (as for Ecoset): only the content can tell.
    server.payload = b"<!DOCTYPE html><html><body>Please log in</body></html>"
    server.content_type = "text/html; charset=utf-8"
    with pytest.raises(ValueError, match=r"received 54 bytes with Content-Type 'text/html; "
                                         r"charset=utf-8', starting b'<!DOCTYPE html>.*not a "
                                         r"PyTorch checkpoint.*nothing was saved as .*w.pth"):
        dl.download(server.url, tmp_path / "w.pth")
    assert files(tmp_path) == {}


def test_html_page_kept_from_before_says_to_delete_it(tmp_path):
    dest = tmp_path / "vgg16_ecoset.pth"
    dest.write_bytes(b"<html>consent</html>")
    with pytest.raises(ValueError, match=f"starts with b'<html>.*delete {re.escape(str(dest))} "
                                         "and rerun with --download"):
        dl.download("http://127.0.0.1:9/unused", dest)
    assert dest.read_bytes() == b"<html>consent</html>"  # the user's file: not deleted


def test_fetch_checkpoint_knows_every_network(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(dl, "download", lambda url, dest, **kw: calls.append((url, dest.name, kw)))
    monkeypatch.setenv("AIS_JAX_CACHE", str(tmp_path))
    models = ("vgg16_imagenet", "vgg16_ecoset", "vgg19_imagenet", "alexnet_imagenet",
              "alexnet_ecoset", "resnet50_imagenet", "resnet50_ecoset")
    for model in models:
        dl.fetch_checkpoint(model)
    torchvision = "https://download.pytorch.org/models/"
    assert calls == [
        (f"{torchvision}vgg16-397923af.pth", "vgg16-397923af.pth", {"sha256_prefix": "397923af"}),
        ("https://osf.io/z5uf3/download", "vgg16_ecoset.pth", {"sha256_prefix": None}),
        (f"{torchvision}vgg19-dcbb9e9d.pth", "vgg19-dcbb9e9d.pth", {"sha256_prefix": "dcbb9e9d"}),
        (f"{torchvision}alexnet-owt-7be5be79.pth", "alexnet-owt-7be5be79.pth",
         {"sha256_prefix": "7be5be79"}),
        ("https://osf.io/xtdf4/download", "alexnet_ecoset.pth", {"sha256_prefix": None}),
        (f"{torchvision}resnet50-0676ba61.pth", "resnet50-0676ba61.pth",
         {"sha256_prefix": "0676ba61"}),
        ("https://osf.io/abfq4/download", "resnet50_ecoset.pth", {"sha256_prefix": None}),
    ]


def _serve_checkpoint(server, monkeypatch, model: str, build, *, prefix: str | None) -> bytes:
    """Points ``model``'s source at the local server, which serves a checkpoint of ``build``.

    ``prefix``: None for no known checksum (as Ecoset's), ``''`` for the served file's own
    sha256 prefix (as torchvision's names carry), else that prefix.
    """
    buffer = io.BytesIO()
    torch.save(constant_state_dict(build), buffer)
    server.payload = buffer.getvalue()
    digest = hashlib.sha256(server.payload).hexdigest()
    filename = dl.SOURCES[model].filename
    monkeypatch.setitem(dl.SOURCES, model, dl.Source(
        server.url, filename, None if prefix is None else prefix or digest[:8]))
    return server.payload


@pytest.mark.parametrize("model, prefix", [("alexnet_imagenet", ""), ("resnet50_ecoset", None)],
                         ids=["checksum", "no-checksum"])
def test_cli_downloads_then_converts(server, monkeypatch, tmp_path, capsys, model, prefix):
    monkeypatch.setenv("AIS_JAX_CACHE", str(tmp_path))
    build = {"alexnet_imagenet": lambda: TorchAlexNet(1000),
             "resnet50_ecoset": lambda: TorchResNet50(565)}[model]
    payload = _serve_checkpoint(server, monkeypatch, model, build, prefix=prefix)
    assert cli.run(model, download=True) == 0
    out = capsys.readouterr().out
    assert hashlib.sha256(payload).hexdigest() in out
    kept = tmp_path / "downloads" / dl.SOURCES[model].filename
    assert kept.read_bytes() == payload
    _, metadata, arch = weights.load_model(model)
    assert arch.name == model.split("_")[0] and metadata["source_file"] == kept.name


def test_cli_download_failing_its_checksum_converts_nothing(server, monkeypatch, tmp_path,
                                                           capsys):
    monkeypatch.setenv("AIS_JAX_CACHE", str(tmp_path))
    _serve_checkpoint(server, monkeypatch, "alexnet_imagenet", lambda: TorchAlexNet(1000),
                      prefix="7be5be79")  # torchvision's, not this file's
    assert cli.run("alexnet_imagenet", download=True) == 1
    assert "does not start with the expected 7be5be79" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []
