"""The one way noisecli reads text files (corpora, task tables, prompts): UTF-8, with a byte-order mark dropped
(as Excel and Notepad write one), or UTF-16 with its mark; gzip where the name ends in .gz. A file that is
neither is one InputError line with the byte offset of the first byte that does not decode, counted from the
start of the (uncompressed) file."""

from __future__ import annotations

import codecs
import gzip
import io
from pathlib import Path
from typing import BinaryIO, TextIO

from noisecli.core.errors import InputError

CHUNK = 1 << 20


def open_binary(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb")


def sniff(head: bytes) -> str:
    """The codec that reads a file starting with `head`: utf-16 (which reads and drops its mark) after a UTF-16
    byte-order mark, else utf-8-sig (UTF-8 that drops a mark if there is one)."""
    return "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"


def open_text(path: Path, errors: str = "strict", newline: str | None = None) -> TextIO:
    """A text stream of the file (universal newlines by default, as open() gives); with errors="strict" a byte
    that does not decode raises UnicodeDecodeError while reading: turn it into one line with `not_text(path)`."""
    raw = open_binary(path)
    head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
    return io.TextIOWrapper(raw, encoding=sniff(head), errors=errors, newline=newline)


def read_text(path: Path) -> str:
    """A whole text file as one string, its line ends as they are (one InputError line where it is not UTF-8 or
    UTF-16 with its mark)."""
    try:
        with open_text(path, newline="") as f:
            return f.read()
    except UnicodeDecodeError:
        raise not_text(path) from None


def not_text(path: Path) -> InputError:
    """The error for a file that does not decode, with the exact offset of its first bad byte (found by
    decoding it again a chunk at a time: a stream's own error counts from the chunk it was reading)."""
    with open_binary(path) as raw:
        head = raw.read(4)
        codec, mark = next(((c, m) for c, m in (("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                                                 ("utf-8", codecs.BOM_UTF8)) if head.startswith(m)), ("utf-8", b""))
        decoder = codecs.getincrementaldecoder(codec)("strict")
        done, data = len(mark), head[len(mark):]
        while True:
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(data, final=not data)
            except UnicodeDecodeError as e:
                return InputError(f"{path}: not {codec[:6].upper()} text (byte {done - pending + e.start}: "
                                  f"{e.reason}); save it as UTF-8")
            if not data:
                return InputError(f"{path}: not readable text")
            done += len(data)
            data = raw.read(CHUNK)
