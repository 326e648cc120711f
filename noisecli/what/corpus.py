"""Where documents come from: the embedded Wikipedia corpora, local files and folders, the HF hub.

Every source becomes a `Corpus` that yields *raw batches* of about 1 MB, cheap to produce, plus a
`parse` function that turns a raw batch into document strings. `prepare` runs `parse` inside its
tokenizer workers, so for JSON lines (the embedded corpora, most dumps) even JSON decoding is spread
over the cores while the main process only reads bytes. Memory stays bounded: batches are read
lazily (a `.json` file is the one format read whole).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

from noisecli.core.errors import InputError
from noisecli.core.hub import hub_missing
from noisecli.core.text import not_text, open_binary, open_text, sniff

EMBEDDED = {
    "en": ("corpus/wiki_en.jsonl.gz", "English Wikipedia lead sections of 10,033 vital articles"),
    "fr": ("corpus/wiki_fr.jsonl.gz", "French Wikipedia lead sections of 9,955 articles"),
}
TEXT_SUFFIXES = (".txt", ".jsonl", ".json", ".parquet")
BATCH_BYTES = 1 << 18  # raw bytes per batch: small enough that the last batch barely idles a core


def data_path(relative: str) -> Path:
    """A file shipped in the project's `data/` (inside the wheel it lives at `noisecli/_data/`)."""
    here = Path(__file__).resolve().parents[1]  # the package folder
    for root in (here / "_data", here.parent / "data"):
        if (root / relative).exists():
            return root / relative
    raise InputError(f"embedded data file {relative} is missing from this installation")


def _as_texts(batch: list[str]) -> list[str]:
    return batch


@dataclass
class Corpus:
    name: str                                  # short name used in output folder names
    description: str                           # for meta.json and error messages
    read_batches: Callable[[], Iterator[Any]]  # fresh iterator of raw batches on each call
    parse: Callable[[Any], list[str]] = _as_texts  # raw batch -> documents; picklable (runs in workers)
    count: Callable[[], int | None] = lambda: None   # how many documents, where a quick pass can tell (the bar's total)

    def documents(self) -> Iterator[str]:
        for raw in self.batches():
            yield from parse_batch(self.parse, self.description, raw)

    def batches(self) -> Iterator[Any]:
        """Raw batches; read failures (bad encoding, I/O) become one-line InputErrors."""
        try:
            yield from self.read_batches()
        except UnicodeDecodeError as e:
            raise InputError(f"{self.description}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except (OSError, EOFError) as e:
            raise InputError(f"{self.description}: cannot be read ({e})") from None


def parse_batch(parse: Callable[[Any], list[str]], description: str, raw: Any) -> list[str]:
    try:
        return parse(raw)
    except UnicodeDecodeError as e:
        raise InputError(f"{description}: not UTF-8 text ({e.reason})") from None


def _group(texts: Iterator[str]) -> Iterator[list[str]]:
    batch, size = [], 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _base_suffix(path: Path) -> str:
    return Path(path.stem).suffix if path.suffix == ".gz" else path.suffix


def _text_of(record: object, field: str, where: str) -> str:
    if not isinstance(record, dict) or field not in record:
        raise InputError(f"{where}: record has no text field '{field}' (choose one with --text-field)")
    value = record[field]
    if value is None:
        return ""          # an empty document (prepare drops and counts those)
    if not isinstance(value, str):
        raise InputError(f"{where}: field '{field}' holds {type(value).__name__} {str(value)[:40]!r}, not text")
    return value


def _read_txt(path: Path, unit: str, errors: str = "strict") -> Iterator[str]:
    """A .txt file's documents (paragraphs or the whole file), read by core/text (UTF-8 or UTF-16, a mark
    dropped; a byte that does not decode is one line with its offset, or U+FFFD with errors="replace")."""
    try:
        with open_text(path, errors) as f:
            if unit == "file":
                yield f.read()
                return
            paragraph: list[str] = []
            for line in f:
                if line.strip():
                    paragraph.append(line)
                elif paragraph:
                    yield "".join(paragraph).rstrip("\n")
                    paragraph = []
            if paragraph:
                yield "".join(paragraph).rstrip("\n")
    except UnicodeDecodeError:
        raise not_text(path) from None


def _jsonl_blocks(path: Path) -> Iterator[tuple[str, int, int, bytes | None]]:
    """Raw batches of whole JSON lines: (file, start, end, bytes). For an uncompressed file only the
    byte range [start, end) is given (bytes None) and the worker reads the lines that begin inside it,
    so the main process reads nothing; a gzip file cannot be entered mid-way, so its blocks carry the
    bytes (start is then the block's first line number), and so do a UTF-16 file's, re-encoded as UTF-8."""
    if _utf16(path):
        yield from _utf16_blocks(path)
        return
    if path.suffix != ".gz":
        size = path.stat().st_size
        for start in range(0, size, BATCH_BYTES):
            yield str(path), start, min(start + BATCH_BYTES, size), None
        return
    line_no, rest = 1, b""
    with open_binary(path) as f:
        while chunk := f.read(BATCH_BYTES):
            chunk = rest + chunk
            cut = chunk.rfind(b"\n") + 1
            if cut:
                yield str(path), line_no, 0, chunk[:cut]
                line_no += chunk.count(b"\n", 0, cut)
            rest = chunk[cut:]
    if rest.strip():
        yield str(path), line_no, 0, rest


def _utf16(path: Path) -> bool:
    try:
        with open_binary(path) as f:
            return sniff(f.read(4)) == "utf-16"
    except (OSError, EOFError):
        return False       # unreadable (not gzip, say): reading its batches says so in one line


def _utf16_blocks(path: Path) -> Iterator[tuple[str, int, int, bytes]]:
    line_no, lines, size = 1, [], 0
    try:
        with open_text(path) as f:
            for line in f:
                lines.append(line)
                size += len(line)
                if size >= BATCH_BYTES:
                    yield str(path), line_no, 0, "".join(lines).encode("utf-8", "surrogatepass")
                    line_no, lines, size = line_no + len(lines), [], 0
    except UnicodeDecodeError:
        raise not_text(path) from None
    if lines:
        yield str(path), line_no, 0, "".join(lines).encode("utf-8", "surrogatepass")


def _read_range(path: str, start: int, end: int) -> bytes:
    """The lines of a file that begin at a byte offset in [start, end), whole."""
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()  # the rest of the line that began before `start` belongs to the range before
        begin = f.tell()
        if begin >= end:
            return b""
        data = f.read(end - begin)
        return data if data.endswith(b"\n") else data + f.readline()


def parse_jsonl_block(field: str, block: tuple[str, int, int, bytes | None],
                      undecodable: list[str] | None = None) -> list[str]:
    """The documents of a block of JSON lines. A line that is not JSON or not UTF-8 is an InputError, or, with
    an `undecodable` list (scan's), its place is appended there and the line skipped."""
    path, start, end, data = block
    first = start if data is not None else 1 if start == 0 else None  # line number of the first line

    def where(n: int) -> str:
        return f"{path}:{first + n}" if first else f"{path} (line {n + 1} after byte {start})"

    if data is None:
        data = _read_range(path, start, end)
    texts = []
    for n, line in enumerate(data.splitlines()):
        if line.strip():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if undecodable is not None:
                    undecodable.append(where(n))
                    continue
                why = f"not valid JSON ({e.msg})" if isinstance(e, json.JSONDecodeError) else f"not UTF-8 text ({e.reason})"
                raise InputError(f"{where(n)}: {why}") from None
            texts.append(_text_of(record, field, where(n)))
    return texts


def _read_json(path: Path, field: str) -> Iterator[str]:
    with open_binary(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    records = list(data.values()) if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a list of records or an object of records")
    for record in records:
        yield _text_of(record, field, str(path))


def _read_parquet(path: Path, field: str) -> Iterator[str]:
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise InputError(f"{path}: not a readable parquet file ({e})") from None
    if field not in pf.schema_arrow.names:
        raise InputError(f"{path}: no column '{field}' (columns: {', '.join(pf.schema_arrow.names)})")
    kind = pf.schema_arrow.field(field).type
    if str(kind) not in ("string", "large_string", "string_view"):
        raise InputError(f"{path}: column '{field}' holds {kind}, not text")
    for batch in pf.iter_batches(columns=[field], batch_size=4096):
        for value in batch.column(0).to_pylist():
            if value is not None:
                yield value


def _files_under(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _base_suffix(p) in TEXT_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise InputError(f"{folder}: no .txt, .jsonl, .json or .parquet files inside")
    return files


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"source {path} does not exist")
    if path.is_file():
        if not os.access(path, os.R_OK):
            raise InputError(f"source {path} is not readable")
        if path.stat().st_size == 0:
            raise InputError(f"source {path} is empty")


def count_documents(files: list[Path]) -> int | None:
    """Documents in .jsonl files (their lines) and .parquet files (their rows), read quickly for the
    progress bar's total: one pass counting newlines (gzip decompressed on the way); None for other kinds, or
    where a file cannot be read (reading its documents says why, in one line)."""
    total = 0
    try:
        for f in files:
            kind = _base_suffix(f)
            if kind == ".parquet":
                import pyarrow.parquet as pq
                total += pq.ParquetFile(f).metadata.num_rows
            elif kind == ".jsonl" and not _utf16(f):
                with open_binary(f) as fh:
                    while chunk := fh.read(1 << 24):
                        total += chunk.count(b"\n")
            else:
                return None
    except Exception:      # noqa: BLE001 (pyarrow and gzip raise many kinds; only the bar's total is lost)
        return None
    return total


def local_corpus(path: Path, text_field: str = "text", txt_unit: str = "paragraph",
                 undecodable: list[str] | None = None) -> Corpus:
    """A local file or folder. With an `undecodable` list (scan's), JSON lines that cannot be decoded are
    listed there and skipped, and bytes of .txt files that are not UTF-8 become U+FFFD (random bytes, to a
    scan) instead of an error."""
    _check_readable(path)
    if path.is_file() and _base_suffix(path) not in TEXT_SUFFIXES:
        raise InputError(f"{path}: unsupported file type (use .txt, .jsonl, .json or .parquet, "
                         "optionally .gz)")
    files = _files_under(path) if path.is_dir() else [path]
    for f in files:
        _check_readable(f)
    name = path.name.split(".")[0] or "corpus"
    description = (f"local {'folder' if path.is_dir() else 'file'} {path.resolve()} "
                   f"({len(files)} file(s); .txt documents are {txt_unit}s)")
    if all(_base_suffix(f) == ".jsonl" for f in files):  # fast path: JSON decoded in the workers
        return Corpus(name, description, lambda: (b for f in files for b in _jsonl_blocks(f)),
                      partial(parse_jsonl_block, text_field, undecodable=undecodable), lambda: count_documents(files))

    def texts() -> Iterator[str]:
        for f in files:
            kind = _base_suffix(f)
            if kind == ".jsonl":
                for block in _jsonl_blocks(f):
                    yield from parse_jsonl_block(text_field, block, undecodable)
            elif kind == ".txt":
                yield from _read_txt(f, txt_unit, "strict" if undecodable is None else "replace")
            elif kind == ".json":
                yield from _read_json(f, text_field)
            else:
                yield from _read_parquet(f, text_field)

    return Corpus(name, description, lambda: _group(texts()), count=lambda: count_documents(files))


def embedded_corpus(name: str) -> Corpus:
    relative, description = EMBEDDED[name]
    path = data_path(relative)
    return Corpus(f"wiki_{name}", f"embedded: {description} ({relative})",
                  lambda: _jsonl_blocks(path), partial(parse_jsonl_block, "text"), lambda: count_documents([path]))


def hf_corpus(dataset: str, split: str = "train", config: str | None = None,
              text_field: str = "text", streaming: bool = True) -> Corpus:
    """A Hugging Face hub dataset through `datasets`, streamed by default (OpenWebText is 38 GB)."""
    if hub_missing():
        raise InputError(f"cannot reach the Hugging Face hub to load '{dataset}' (offline?); "
                         "use a local file or folder, or the embedded corpus")
    import datasets
    try:
        ds = datasets.load_dataset(dataset, config, split=split, streaming=streaming)
    except Exception as e:  # datasets raises many types: missing dataset, split, connection...
        raise InputError(f"could not load hub dataset '{dataset}' split '{split}': "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None

    def texts() -> Iterator[str]:
        for n, record in enumerate(ds):
            yield _text_of(record, text_field, f"{dataset}[{n}]")

    return Corpus(dataset.replace("/", "_"), f"hub dataset {dataset} config={config} split={split}",
                  lambda: _group(texts()))


def open_corpus(source: str | None, hf: str | None = None, split: str = "train",
                hf_config: str | None = None, text_field: str = "text",
                txt_unit: str = "paragraph", undecodable: list[str] | None = None) -> Corpus:
    """Resolve what `prepare` was asked to read. Precedence: --hf, then SOURCE (`en`, `fr` or a path),
    then the embedded English corpus."""
    if txt_unit not in ("file", "paragraph"):
        raise InputError(f"--txt-unit must be 'file' or 'paragraph', not '{txt_unit}'")
    if hf:
        if source:
            raise InputError("give either a SOURCE or --hf, not both")
        return hf_corpus(hf, split, hf_config, text_field)
    if source is None or source in EMBEDDED:
        return embedded_corpus(source or "en")
    return local_corpus(Path(source), text_field, txt_unit, undecodable)
