"""Benchmark: memory and time of a CSV import through its Celery task, for a 6 MB and a
60 MB subscriber file (about 890,000 rows) and a 60 MB file that is one single line.

Creates its own database (amends_bench_import by default) and a scratch var/ directory,
then for each file runs, in a fresh child process, the task body the worker runs
(`audiences.tasks.audience_import_run`, eager) twice: the real import (growth of the
process's peak RSS over its size after warm-up, read from /proc, plus CPU and wall time),
then a preview of the same file under tracemalloc (peak of Python allocations). Drops the
database and prints as its last line:

    import_memory ratio=<tracemalloc peak 60 MB / peak 6 MB> peak_60mb=<MiB> rss_60mb=<MiB>

A ratio near 1 means memory does not grow with the file. Machines are shared: times are
indicative only.

Usage: python bench/import_memory.py [--megabytes 60]
Connection: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432), database name
BENCH_DB (default amends_bench_import).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB", "amends_bench_import")
MIB = 1024 * 1024


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def write_rows(path: Path, megabytes: float) -> int:
    """An ESP-style export of about `megabytes` MB; returns the number of rows."""
    target, rows = int(megabytes * 1_000_000), 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("Email Address,First Name,Last Name,Language,Member Rating\r\n")
        written = 0
        while written < target:
            line = (f"subscriber{rows}@bench-import.test,First{rows},Lastname{rows},"
                    f"{'en' if rows % 3 else 'nl'},{rows % 5}\r\n")
            out.write(line)
            written += len(line)
            rows += 1
    return rows


def write_single_line(path: Path, megabytes: float) -> None:
    with open(path, "wb") as out:
        out.write(b"Email Address,Notes,")
        block = b"x" * MIB
        for _ in range(int(megabytes * 1_000_000 // MIB)):
            out.write(block)


def env(var_dir: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"{SERVER}/{DB}", "AMENDS_EMBEDDED": "1",
            "AMENDS_VAR_DIR": str(var_dir), "REDIS_URL": "", "LOG_LEVEL": "WARNING",
            "CELERY_TASK_ALWAYS_EAGER": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
            "AMENDS_IMPORT_MAX_BYTES": str(500 * 1000 * 1000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=60.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child))
        return

    admin(f'DROP DATABASE IF EXISTS "{DB}"')
    admin(f'CREATE DATABASE "{DB}"')
    try:
        with tempfile.TemporaryDirectory(prefix="amends-bench-import-") as scratch:
            run(Path(scratch), args.megabytes)
    finally:
        admin(f'DROP DATABASE IF EXISTS "{DB}"')


def run(scratch: Path, megabytes: float) -> None:
    var_dir = scratch / "var"
    var_dir.mkdir()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT,
                   env=env(var_dir), check=True)
    small, large, single = (scratch / "small.csv", scratch / "large.csv",
                            scratch / "single-line.csv")
    rows = {"small": write_rows(small, megabytes / 10), "large": write_rows(large, megabytes)}
    write_single_line(single, megabytes)
    figures = {}
    for label, path in (("small", small), ("large", large), ("single line", single)):
        out = subprocess.run([sys.executable, __file__, "--child", str(path)], cwd=ROOT,
                             env=env(var_dir), check=True, capture_output=True, text=True)
        figures[label] = json.loads(out.stdout.strip().splitlines()[-1])
        f = figures[label]
        print(f"{label:<12} {path.stat().st_size / 1e6:6.1f} MB "
              f"{rows.get(label, 1):>9,} rows  tracemalloc peak {f['peak'] / MIB:6.2f} MiB  "
              f"RSS +{f['rss_growth'] / MIB:6.1f} MiB  cpu {f['cpu']:5.1f} s  "
              f"wall {f['wall']:5.1f} s  {f['outcome']}")
    ratio = figures["large"]["peak"] / figures["small"]["peak"]
    print(f"import_memory ratio={ratio:.2f} peak_60mb={figures['large']['peak'] / MIB:.2f} "
          f"rss_60mb={figures['large']['rss_growth'] / MIB:.1f} "
          f"single_line_rss={figures['single line']['rss_growth'] / MIB:.1f}")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def child(path: Path) -> None:
    """One file: the real import with RSS measured, then a tracemalloc'd preview."""
    import time
    import tracemalloc

    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.files import File
    from django.db import connection

    from accounts.roles import Role
    from accounts.services import user_create_with_role
    from audiences import services
    from audiences.models import AudienceImport

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE audiences_subscriber, audiences_audienceimport CASCADE")
    from django.contrib.auth import get_user_model

    user = (get_user_model().objects.filter(username="bench").first()
            or user_create_with_role(username="bench", password="bench-password-1",
                                     role=Role.MARKETING))

    def import_file(file_path: Path, dry_run: bool) -> AudienceImport:
        with open(file_path, "rb") as handle:
            queued = services.audience_import_queue(
                actor=user, kind="subscribers", upload=File(handle, name=file_path.name),
                dry_run=dry_run)  # eager: the task runs when the transaction commits
        return AudienceImport.objects.get(pk=queued.pk)

    warm = path.with_suffix(".warm.csv")
    warm.write_text("Email Address,First Name\r\nwarm@bench-import.test,Warm\r\n")
    import_file(warm, dry_run=True)

    # The real import first, so the RSS baseline is the warmed-up process and nothing else.
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
    before = _status_kib("VmRSS")
    cpu, wall = time.process_time(), time.perf_counter()
    done = import_file(path, dry_run=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    growth = (_status_kib("VmHWM") - before) * 1024

    tracemalloc.start()
    import_file(path, dry_run=True)  # the same file again: every row now "unchanged"
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result = done.result
    outcome = (f"{done.status}: {dict(result.get('counts', []))}" if not result.get(
        "file_problem") else f"{done.status}: {result['file_problem'][:70]}")
    print(json.dumps({"peak": peak, "rss_growth": growth, "cpu": cpu, "wall": wall,
                      "outcome": outcome}))


if __name__ == "__main__":
    main()
