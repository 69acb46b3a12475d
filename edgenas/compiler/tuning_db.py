"""Tuning databases: where each target's MetaSchedule database lives, the databases shipped with edgenas, and
reading one as `compile` does (each workload's few fastest records).

A database is a directory: by default `<edgenas cache>/tuning/<target>-<hash of the TVM target>`
(EDGENAS_TUNING_DIR overrides the parent), or the one given. `compile_onnx` draws each kernel's schedule from
the given database or the target's own (made by `edgenas tune` here), and for a workload that one lacks, from
the databases shipped with edgenas for the target's instruction set, one per family of CPU, the target's family
first (`SHIPPED_DATABASES/<target>/<family>`, made with `export_database` from the databases tuned here,
gzip-compressed: a workload is base64 of indented JSON, 13x smaller compressed) (`databases_for`), loading each
workload's few fastest records (`open_fastest`), and only of the workloads the network has: a record's trace is
replayed as it loads, so the whole shipped database took 4 s. MetaSchedule's databases do not know their target:
keep one per target.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..device.target import ResolvedTarget
from ..errors import EdgenasError

MODULE_EQUALITY = "anchor-block"  # a convolution's records serve it with any fused epilogue
WORKLOADS, RECORDS = "database_workload.json", "database_tuning_record.json"  # MetaSchedule's JSONDatabase
FAILED_RUN_S = 1e9  # MetaSchedule records a candidate that failed to build or run as taking 1e10 s


def database_path(target: ResolvedTarget) -> Path:
    """Where `target`'s tuning database lives by default: one directory per distinct TVM target."""
    if os.environ.get("EDGENAS_TUNING_DIR"):
        root = Path(os.environ["EDGENAS_TUNING_DIR"])
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("edgenas")) / "tuning"
    digest = hashlib.sha256(json.dumps({"tvm": target.tvm, "host": target.host}, sort_keys=True,
                                       default=str).encode()).hexdigest()[:12]
    return root / f"{target.name}-{digest}"


SHIPPED_DATABASES = Path(__file__).parent / "tuning"  # databases that ship with edgenas: <target>/<CPU family>
AMD_CPUS = ("znver", "bdver", "btver", "amdfam", "barcelona", "athlon", "opteron", "k8", "k6")  # LLVM's names


def cpu_family(tvm_target: dict) -> str | None:
    """The family of CPU a TVM target dict (or a tuning record's target) is for, as shipped databases are filed:
    `amd` or `intel` for an x86-64 LLVM target with a named CPU, else None. A schedule's speed transfers
    within a family far better than across (on the weight-heavy 1x1 convolutions of EfficientNet, AMD-tuned
    records left TVM 1.52x onnxruntime on an Intel Xeon, records tuned there 1.07x)."""
    mcpu = str(tvm_target.get("mcpu") or "")
    if tvm_target.get("kind") != "llvm" or not mcpu or mcpu.startswith("x86-64") or \
            "x86" not in str(tvm_target.get("mtriple", "x86_64")):
        return None
    return "amd" if mcpu.startswith(AMD_CPUS) else "intel"


def check_given(tuning_db: str | Path | None) -> None:
    """A tuning database the user names must exist (checked before any work is done)."""
    if tuning_db and not Path(tuning_db).is_dir():
        raise EdgenasError(f"tuning database {tuning_db} does not exist; run edgenas tune --db {tuning_db} first, "
                           f"or leave --tuning-db out")


def databases_for(target: ResolvedTarget, given: str | Path | None = None) -> list[Path]:
    """The databases `compile` draws schedules from, in order, per workload: `given` (else the target's own, made
    by `edgenas tune` on this machine) where it exists, then those shipped for the target's instruction set, its
    own family of CPU's first (their records were measured on other CPUs: fast here, though tuning here is faster
    still). An interrupted `tune` thus leaves no kernel untuned that a shipped database covers.
    EDGENAS_NO_SHIPPED_TUNING=1 leaves the shipped ones out."""
    first = Path(given) if given else database_path(target)
    out = [first] if first.is_dir() else []
    shipped = SHIPPED_DATABASES / target.name
    if target.device == "cpu" and shipped.is_dir() and not os.environ.get("EDGENAS_NO_SHIPPED_TUNING"):
        family = cpu_family(target.tvm)
        families = sorted((p for p in shipped.iterdir() if p.is_dir()), key=lambda p: (p.name != family, p.name))
        out += [p for p in families if p not in out]
    return out


def export_database(sources: Path | list[Path], destination: Path, top_k: int = 8, compress: bool = False,
                    only: set[str] | None = None, family: str | None = None) -> int:
    """Copy each workload's `top_k` fastest records of the database at `sources` (or of several, merged: how a
    shipped database gathers every space's) into a new one at `destination`, gzip-compressed with `compress` (how
    it ships), of the workloads whose `workload_key` is in `only` (default: all), and with `family` only the
    records measured on that family of CPU (`cpu_family`; times from two families do not compare); return the
    number of records copied."""
    if destination.exists():
        raise EdgenasError(f"{destination} exists; remove it first")
    sources = [sources] if isinstance(sources, Path) else list(sources)
    with tempfile.TemporaryDirectory() as tmp:
        source = _merged(sources, Path(tmp), top_k, family) if len(sources) > 1 else sources[0]
        workloads, records = _fastest_records(source, top_k, family)
    workloads, records = _only(workloads, records, only)
    destination.mkdir(parents=True)
    for name, text in ((WORKLOADS, workloads), (RECORDS, "".join(line + "\n" for line in records))):
        if compress:
            (destination / f"{name}.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            (destination / name).write_text(text)
    return len(records)


def _merged(sources: list[Path], tmp: Path, top_k: int, family: str | None) -> Path:
    """One database in `tmp` with each source's `top_k` fastest records per workload (of `family`'s CPUs where
    given; a workload found in several sources is one workload there)."""
    from tvm.s_tir import meta_schedule as ms

    merged = open_database(tmp / "merged")
    for i, source in enumerate(sources):
        export_database(source, tmp / f"source{i}", top_k, family=family)
        for r in open_database(tmp / f"source{i}").get_all_tuning_records():
            merged.commit_tuning_record(ms.database.TuningRecord(
                r.trace, merged.commit_workload(r.workload.mod), r.run_secs, r.target, r.args_info))
    return tmp / "merged"


def workload_key(mod) -> str:
    """The key a database files the workload of the kernel module `mod` under (MODULE_EQUALITY's hash, as
    MetaSchedule's JSONDatabase writes it: of the anchor block, or of the whole module where it has none)."""
    import tvm_ffi
    from tvm.s_tir.analysis import find_anchor_sblock

    anchor = find_anchor_sblock(mod)
    return str(tvm_ffi.structural_hash(mod if anchor is None else anchor, skip_tensor_content=True))


def open_fastest(path: Path, top_k: int = 4, only: set[str] | None = None):
    """The database at `path` as compile reads it: an in-memory copy holding each workload's `top_k` fastest
    records, of the workloads whose `workload_key` is in `only` (default: all). Loading a record replays its
    trace, so the whole database of a long tuning run (a thousand records) would add seconds to every compile;
    the kernels of a new architecture replay their workload's fastest or second fastest record."""
    from tvm.s_tir import meta_schedule as ms

    with tempfile.TemporaryDirectory() as tmp:
        export_database(path, Path(tmp) / "db", top_k, only=only)
        on_disk = open_database(Path(tmp) / "db")
        memory = ms.database.MemoryDatabase(module_equality=MODULE_EQUALITY)
        for record in on_disk.get_all_tuning_records():
            memory.commit_tuning_record(ms.database.TuningRecord(
                record.trace, memory.commit_workload(record.workload.mod), record.run_secs, record.target,
                record.args_info))
    return memory


def _fastest_records(path: Path, top_k: int, family: str | None = None) -> tuple[str, list[str]]:
    """The workload file of the database at `path` and the lines of its `top_k` fastest valid records per
    workload (measured on `family`'s CPUs where given), read as JSON lines (MetaSchedule's JSONDatabase format:
    `[workload index, [trace, run seconds, target, argument info]]`) without loading the traces."""
    try:
        workloads, text = _read(path, WORKLOADS), _read(path, RECORDS)
    except OSError as e:
        raise EdgenasError(f"cannot read the tuning database {path} ({e.strerror}); run edgenas tune") from None
    lines = text.splitlines()
    timed: dict[int, list[tuple[float, int, str]]] = {}
    cut = not text.endswith("\n")  # the last record was cut mid-line by an interrupt
    for n, line in enumerate(lines[:-1] if cut and lines else lines):
        try:
            workload, (_, run_secs, target, _) = json.loads(line)
            mean = sum(float(s) for s in run_secs) / len(run_secs)
            other = family is not None and cpu_family(target) != family
        except (ValueError, TypeError, ZeroDivisionError, AttributeError):
            raise EdgenasError(f"tuning database {path}: line {n + 1} of {RECORDS} is not a tuning record; remove "
                               f"the database and tune again") from None
        if mean < FAILED_RUN_S and not other:
            timed.setdefault(workload, []).append((mean, n, line))
    kept = sorted((n, line) for rs in timed.values() for _, n, line in sorted(rs)[:top_k])
    return workloads, [line for _, line in kept]


def _only(workloads: str, records: list[str], keys: set[str] | None) -> tuple[str, list[str]]:
    """The workload lines that have a record in `records` and whose key (a line's first field) is in `keys` (None:
    any), and their records, renumbered (a record names its workload by its line number)."""
    used = {int(line[1:].split(",", 1)[0]) for line in records}  # `[index,[trace, ...]]`
    kept: dict[int, int] = {}
    lines = []
    for n, line in enumerate(workloads.splitlines()):
        if n in used and (keys is None or json.loads(line)[0] in keys):
            kept[n] = len(lines)
            lines.append(line)
    out = []
    for line in records:
        workload, rest = line[1:].split(",", 1)  # the rest is kept as written
        if int(workload) in kept:
            out.append(f"[{kept[int(workload)]},{rest}")
    return "".join(line + "\n" for line in lines), out


def _read(path: Path, name: str) -> str:
    """The file `name` of the database at `path`, or its gzip-compressed form `name.gz` (as databases ship) where
    the plain file is missing or empty (MetaSchedule creates empty ones in a directory it opens)."""
    plain = path / name
    if not (plain.exists() and plain.stat().st_size) and (path / f"{name}.gz").exists():
        return gzip.decompress((path / f"{name}.gz").read_bytes()).decode()
    return plain.read_text()


def _drop_partial_line(path: Path) -> None:
    """Cut the JSON-lines file at `path` back to its last newline, if it ends in the middle of a line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def open_database(path: Path):
    """The MetaSchedule JSON database in directory `path` (created when missing), its files first cut back to
    their last whole line (a run interrupted while it appended a record)."""
    from tvm.s_tir import meta_schedule as ms

    try:
        path.mkdir(parents=True, exist_ok=True)
        for name in (WORKLOADS, RECORDS):
            _drop_partial_line(path / name)
        return ms.database.JSONDatabase(work_dir=str(path), module_equality=MODULE_EQUALITY)
    except OSError as e:
        raise EdgenasError(f"cannot create the tuning database {path} ({e.strerror}); pass a writable --db") from None
    except Exception as e:  # noqa: BLE001  (TVM raises its own types for unreadable JSON)
        raise EdgenasError(f"tuning database {path} is unreadable ({str(e).splitlines()[0]}); remove it and "
                           f"tune again") from None
