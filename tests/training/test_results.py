"""The results tables: a reader never sees half of a concurrent append."""

from __future__ import annotations

import threading
import time

import pandas as pd

from workbench.training.results import append_rows, read_table


def test_reads_during_concurrent_appends_never_see_a_torn_table(tmp_path):
    # pyarrow opened the path twice (footer, then pages); an append renaming a new table in
    # between gave "Unexpected end of stream" about once in a hundred reads (seen on Ray).
    path = tmp_path / "results.parquet"
    append_rows(path, pd.DataFrame({"run_id": ["first"], "v": [0.0], "s": [""]}))
    stop, errors, reads = threading.Event(), [], 0

    def append_forever() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            n = k % 50 + 1
            append_rows(path, pd.DataFrame({"run_id": [f"r{k}"] * n, "v": [float(k)] * n, "s": ["y" * (k % 300)] * n}))

    writer = threading.Thread(target=append_forever)
    writer.start()
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            try:
                table = read_table(path)
                assert table["run_id"].iloc[0] == "first"
                reads += 1
            except Exception as e:  # noqa: BLE001 - collect, then report every failure
                errors.append(str(e)[:120])
    finally:
        stop.set()
        writer.join()
    assert reads > 50 and not errors, errors[:3]
