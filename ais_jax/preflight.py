"""Checks every command runs on its inputs before any work, and one way to report failures.

A command-line entry point uses this module in three places::

    def main(argv):
        preflight.refuse_leftovers(argv)                      # a mistyped or pasted argument
        seeds = preflight.int_list(FLAGS.seeds, "--seeds")
        out = preflight.check_out_dir(FLAGS.out, data=[FLAGS.data_dir])
        ...                                                   # the one library call

    if __name__ == "__main__":
        app.run(preflight.run_cli(main))

so that bad input ends in one line ``error: ...`` naming the flag or the file, and an exit
status != 0, never in a traceback or in a run that silently used defaults.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

from ais_jax import storage

EXIT_ERROR = 1  # bad input or a failed read/write, reported in one line
EXIT_USAGE = 2  # the command line itself is wrong
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

MIN_TEST_IMAGES = 3  # a test fold needs >= 3 images: 3 pairs, the fewest a correlation can use


class UsageError(ValueError):
    """The command line is wrong (an argument not understood, a bad flag value)."""


def refuse_leftovers(argv: Sequence[str]) -> None:
    """Refuses arguments that absl did not parse as flags (``argv[1:]`` of ``main(argv)``).

    absl hands positional arguments to ``main`` untouched, so a stray word (``--demo true``,
    a pasted file name) would otherwise run with the defaults.

    Raises:
      UsageError: naming each argument not understood.
    """
    leftovers = list(argv[1:])
    if leftovers:
        raise UsageError(
            f"argument{'s' if len(leftovers) > 1 else ''} not understood: "
            f"{' '.join(repr(a) for a in leftovers)} (flags are written --name=value; a "
            "boolean is --name or --noname; all flags: --helpshort)")


def refuse_unused_flags(given: Sequence[str], uses: Sequence[str], *, demo: bool) -> None:
    """Flags given on the command line that a run does not use are refused, not ignored.

    Args:
      given: the flags the user gave (absl's ``FLAGS[name].present``), without ``--``.
      uses: the flags a ``--demo`` run uses (the demo makes its own data and networks).
      demo: whether ``--demo`` is on. With it, every given flag but ``demo`` and ``uses`` is
        refused; without it, every given ``demo_*`` flag.

    Raises:
      UsageError: naming each such flag.
    """
    if demo:
        unused = [n for n in given if n not in {"demo", *uses}]
        why = ("the demo makes its own data and networks; it uses only "
               + ", ".join(f"--{n}" for n in uses))
    else:
        unused = [n for n in given if n.startswith("demo_")]
        why = "they apply to --demo only"
    if unused:
        raise UsageError(f"{' '.join('--' + n for n in unused)}: not used by this run ({why}); "
                         f"remove {'it' if len(unused) == 1 else 'them'}")


def int_list(values: Iterable[str] | str | None, flag: str, *, minimum: int | None = None
             ) -> tuple[int, ...]:
    """Parses a list flag (absl ``DEFINE_list``: strings) into integers.

    Args:
      values: the flag's value: a list of strings, or one comma-separated string.
      flag: the flag's name for messages, e.g. ``'--seeds'``.
      minimum: smallest allowed value, if any.

    Raises:
      UsageError: naming the flag and the first entry that is not an integer (or too small),
        or an empty list.
    """
    if values is None:
        raise UsageError(f"{flag}: a comma-separated list of integers is required")
    if isinstance(values, str):
        values = values.split(",")
    out = []
    for v in values:
        text = str(v).strip()
        try:
            number = int(text)
        except ValueError:
            raise UsageError(f"{flag}: {text!r} is not an integer (expected a comma-separated "
                             "list of integers, e.g. 111,222)") from None
        if minimum is not None and number < minimum:
            raise UsageError(f"{flag}: {number} is below the minimum {minimum}")
        out.append(number)
    if not out:
        raise UsageError(f"{flag}: empty list; give at least one integer")
    return tuple(out)


def check_positive(value: int | None, flag: str) -> int:
    """``value`` if it is an integer >= 1; else `UsageError` naming the flag."""
    if value is None or isinstance(value, bool) or int(value) != value or value < 1:
        raise UsageError(f"{flag}: must be a positive integer, got {value!r}")
    return int(value)


def check_folds(n_images: int, folds: int, *, flag: str = "--folds",
                source: str | os.PathLike | None = None) -> None:
    """Refuses a number of folds that leaves fewer than `MIN_TEST_IMAGES` test images.

    The legacy splits (`ais_jax.engine.crossval.legacy_folds`) cut the n images into ``folds``
    chunks
    of ``n // folds`` or one more; the smallest chunk is the test set that matters.

    Raises:
      UsageError: naming the flag, n and the largest number of folds that works.
    """
    where = f" ({source})" if source is not None else ""
    if folds < 2:
        raise UsageError(f"{flag}={folds}: need at least 2 folds")
    if n_images // folds < MIN_TEST_IMAGES:
        best = n_images // MIN_TEST_IMAGES
        advice = (f"use --folds between 2 and {best}" if best >= 2 else
                  f"a dataset needs at least {2 * MIN_TEST_IMAGES} images")
        raise UsageError(
            f"{flag}={folds}: {n_images} images{where} in {folds} folds leaves "
            f"{n_images // folds} test image(s) in a fold; a correlation needs at least "
            f"{MIN_TEST_IMAGES}: {advice}")


def _nearest_existing(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path("/")


def _probe(folder: Path, what: str) -> None:
    """Creates and removes a file in ``folder``: the one sure test that it is writable."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".ais_jax-write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise storage.WriteError(folder, f"{what} is not writable ({e.strerror or e})",
                                 e.errno) from e


def _inside(a: Path, b: Path) -> bool:
    """Whether ``a`` is ``b`` or lies under it (both resolved)."""
    return a == b or b in a.parents


def _check_apart(out: Path, data: Iterable[str | os.PathLike | None], flag: str,
                 refuse_containing: bool = True) -> None:
    resolved = out.resolve()
    for d in data:
        if d is None:
            continue
        d_path = Path(d).expanduser()
        folder = d_path.parent if d_path.is_file() else d_path
        folder = folder.resolve()
        if _inside(resolved, folder):
            raise UsageError(f"{flag}={out} lies inside the data folder {folder}: outputs there "
                             "would be read as data by the next run; choose another folder")
        if refuse_containing and _inside(folder, resolved):
            raise UsageError(f"{flag}={out} contains the data folder {folder}; choose an output "
                             "folder outside the data")


def check_out_dir(out: str | os.PathLike | None, *, data: Iterable[str | os.PathLike | None] = (),
                  flag: str = "--out", refuse_containing: bool = True) -> Path:
    """Checks an output folder before any work: a folder (or creatable), writable, apart.

    Nothing is created: a folder that does not exist yet is judged by its nearest existing
    parent, and the writability test creates and removes a probe file there.

    Args:
      out: the output folder.
      data: the folders whose files are read as data (image folders, a Peterson root; a
        file stands for its folder); ``out`` must neither lie inside one (its files would be
        read as data next time) nor contain one.
      flag: the flag's name for messages.
      refuse_containing: also refuse an ``out`` that contains a data folder (the command
        line always does; a library caller that generates its data under ``out``, such as the
        synthetic demo, passes False).

    Returns:
      ``out`` as a `Path` (``~`` expanded).

    Raises:
      UsageError: no value, or ``out`` is inside / contains a data folder.
      ais_jax.storage.WriteError: ``out`` is an existing file, or not writable (the OS reason).
    """
    if out is None or str(out) == "":
        raise UsageError(f"{flag}: an output folder is required")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise storage.WriteError(path, f"{flag} names an existing file, not a folder")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise storage.WriteError(path, f"{base} is a file, so {flag} cannot be created under it")
    _probe(base, f"{flag} ({base})" if base != path else flag)
    _check_apart(path, data, flag, refuse_containing)
    return path


def check_out_file(out: str | os.PathLike | None, *, flag: str = "--out",
                   data: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Checks an output file before any work: not a folder, its folder writable.

    Raises:
      UsageError: no value, or the file would be written inside a data folder.
      ais_jax.storage.WriteError: ``out`` is an existing folder, or its folder is not writable.
    """
    if out is None or str(out) == "":
        raise UsageError(f"{flag}: an output file is required")
    path = Path(out).expanduser()
    if path.is_dir():
        raise storage.WriteError(path, f"{flag} names an existing folder, not a file")
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise storage.WriteError(path, f"{base} is a file, so {flag} cannot be created under it")
    _probe(base, f"the folder of {flag} ({base})")
    _check_apart(path, data, flag)
    return path


def error_message(e: BaseException) -> str:
    """The one-line message of an expected error, naming the file of an `OSError` first."""
    text = str(e).strip()
    if isinstance(e, OSError) and e.filename and e.strerror and text.startswith("[Errno"):
        # The OS's own "[Errno 2] No such file or directory: 'x'" reads better as "x: reason".
        text = f"{e.filename}: {e.strerror}"
    return text or type(e).__name__


# What a file is, from its first bytes (for messages about a file that cannot be parsed).
_STARTS = (
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"PK\x03\x04", "a zip archive (a NumPy .npz?)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x89HDF", "an HDF5 file"),
    (b"MATLAB", "a MATLAB .mat file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x80", "a Python pickle"),
)


def describe_file(path: str | os.PathLike) -> str:
    """What a file looks like, judged from its first bytes: ``'an empty file'``, ``'a JPEG
    image'``, ``'a zip archive (a NumPy .npz?)'``, ``'JSON text'``, ``'HTML'``, ``'text'``, ...

    For messages about a user's file that cannot be parsed; never raises.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if not head:
        return "an empty file (0 bytes)"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    for magic, kind in _STARTS:
        if head.startswith(magic):
            return kind
    text = head.lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text:
        return "HTML"
    if text.startswith((b"{", b"[")):
        return "JSON text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "binary data of an unknown format"
    return "text"


T = TypeVar("T")


def read_user_file(path: str | os.PathLike, what: str, reader: Callable[[Path], T]) -> T:
    """``reader(path)``, with any failure to parse the file as one ValueError naming it.

    Args:
      path: a file the user gave (a saliency map, a manifest, an Aim 2 array, ...).
      what: what it should be, for the message, e.g. ``'a saliency map (.npy)'``.
      reader: parses the file; raises on a file it cannot parse.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: ``<path>: cannot read <what>: it looks like <kind> (<reason>)``; a ValueError
        of ``reader`` that already names the file is passed on as it is.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        return reader(path)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:  # any failure to parse a user file is bad input
        if isinstance(e, ValueError) and str(e).startswith(str(path)):
            raise
        reason = str(e).strip() or type(e).__name__
        raise ValueError(f"{path}: cannot read {what}: it looks like {describe_file(path)} "
                         f"({type(e).__name__}: {reason})") from e


def _one_array(path: Path) -> Any:
    array = np.load(path, allow_pickle=False)
    if not isinstance(array, np.ndarray):  # np.load gives an NpzFile for a zip archive
        array.close()
        raise ValueError("a NumPy .npz archive, not one array: save it with numpy.save")
    return array


def read_npy(path: str | os.PathLike, what: str) -> Any:
    """A user's ``.npy`` array (no pickles), any parse failure naming the file.

    Raises:
      ValueError: ``<path>: cannot read <what>: it looks like <kind> (...)``, e.g. for an
        empty file, or an ``.npz`` archive named ``.npy``.
    """
    return read_user_file(path, what, _one_array)


def read_json(path: str | os.PathLike, what: str) -> Any:
    """A user's JSON file (a manifest, a run record), any parse failure naming the file."""
    return read_user_file(path, what, lambda p: json.loads(p.read_text()))


def recorded_aim(out: str | os.PathLike) -> str | None:
    """Which aim wrote the results in ``out`` (its ``run.json``), or None if none did.

    ``run.json`` names it (``"aim"``); older ones are recognised by their aim's version entry.
    """
    path = Path(out).expanduser() / "run.json"
    if not path.is_file():
        return None
    run = read_json(path, "a run record (run.json)")
    if not isinstance(run, dict):
        raise ValueError(f"{path}: not a run record (a JSON object expected)")
    if isinstance(run.get("aim"), str):
        return run["aim"]
    versions = run.get("versions") or {}
    for key, aim in (("fold_format_version", "aim1"), ("aim2_format_version", "aim2"),
                     ("aim3_record_version", "aim3")):
        if key in versions:
            return aim
    return "an unknown command"


def check_aim_folder(out: str | os.PathLike, aim: str, *, flag: str = "--out") -> None:
    """Refuses an output folder that holds another aim's results (its ``run.json`` says so).

    Two aims in one folder would overwrite each other's ``run.json``, ``summary.md`` and
    per-item files, and a resume of one would keep the other's files.

    Raises:
      UsageError: naming the folder, the aim found there and the aim about to run.
    """
    found = recorded_aim(out)
    if found is not None and found != aim:
        raise UsageError(f"{flag}={out} holds the results of {found} (its run.json says so); "
                         f"{aim} would overwrite them: give {aim} an --out of its own")


# Failures that mean bad input or a failed read/write, each with a message naming the flag or
# the file. Anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (ValueError, OSError, ImportError)


def run_cli(main: Callable[[list[str]], int | None]) -> Callable[[list[str]], int]:
    """Wraps an absl ``main(argv)``: expected failures become ``error: ...`` and an exit code.

    `UsageError` exits with `EXIT_USAGE`; other `EXPECTED_ERRORS` (ValueError,
    FileNotFoundError and ais_jax.weights.MissingWeightsError, OSError such as
    ais_jax.storage.WriteError, ImportError for a missing optional package) with `EXIT_ERROR`;
    Ctrl-C with `EXIT_INTERRUPTED`. Outputs are written atomically, so none is half-written.
    """

    @functools.wraps(main)
    def wrapped(argv: list[str]) -> int:
        try:
            code = main(argv)
        except UsageError as e:
            print(f"error: {error_message(e)}", file=sys.stderr)
            return EXIT_USAGE
        except EXPECTED_ERRORS as e:
            print(f"error: {error_message(e)}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("interrupted: finished outputs are kept; run the same command again to resume",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        return 0 if code is None else int(code)

    return wrapped
