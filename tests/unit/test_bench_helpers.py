"""The benchmark's own counting and statistics: what BENCHMARKS.md's figures rest on."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest

from benchmarks import coldstart, profile
from benchmarks.counting import CallCounter, firestore_rpcs, split
from benchmarks.load import drive, shared_worker
from benchmarks.stats import percentile, spread
from devstack.function_server import ROOT


def test_percentiles_are_nearest_rank_and_always_a_measured_value():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 99) == 5.0
    assert percentile(values, 0) == 1.0
    assert percentile(list(range(1, 101)), 99) == 99
    with pytest.raises(ValueError):
        percentile([], 50)


def test_spread_is_range_over_median():
    assert spread([90.0, 100.0, 110.0]) == pytest.approx(0.2)


class Api:
    def read(self, n):
        return n

    def write(self, n):
        if n < 0:
            raise ValueError("refused")
        return n

    def untouched(self):
        return "same"


def test_counter_counts_calls_and_failures_from_many_threads_then_restores():
    original = Api.__dict__["read"]
    with CallCounter(Api, ["read", "write"]) as counter:
        api = Api()
        threads = [
            threading.Thread(target=lambda: [api.read(1) for _ in range(100)]) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert api.write(2) == 2
        with pytest.raises(ValueError):
            api.write(-1)
        calls, failed = counter.take()
        assert calls == {"read": 800, "write": 2}
        assert failed == {"write": 1}
        assert counter.take() == ({}, {})  # taking starts again from zero
    assert Api.__dict__["read"] is original


def test_firestore_counter_wraps_every_rpc_of_the_client_and_splits_reads_from_writes():
    counter = firestore_rpcs()
    names = set(counter._names)
    assert {"batch_get_documents", "commit", "get_document", "run_query"} <= names
    assert split({"batch_get_documents": 1, "commit": 2}) == (1, 2)


def test_drive_runs_every_item_once_at_the_given_concurrency():
    seen, lock, live, peak = [], threading.Lock(), [0], [0]

    def work(item):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
            seen.append(item)
        threading.Event().wait(0.002)
        with lock:
            live[0] -= 1
        return item % 10 != 0

    run = drive(list(range(200)), 8, shared_worker(work))
    assert sorted(seen) == list(range(200))
    assert run.count == 200 and len(run.latencies) == 200
    assert run.failures == 20
    assert 1 < peak[0] <= 8


def test_profile_samples_are_charged_to_the_innermost_known_layer():
    site = "/venv/lib/python3.11/site-packages"
    raw = "\n".join(
        [
            f"run (/usr/lib/python3.11/threading.py:1);handle ({site}/gunicorn/w.py:2);"
            f"deliver ({ROOT}/notifier/usecases/exactly_once.py:3);"
            "dumps (/usr/lib/python3.11/json/x.py:4) 3",
            f"handle ({site}/gunicorn/w.py:2);claim (notifier/adapters/firestore/store.py:5);"
            f"commit ({site}/google/cloud/firestore_v1/batch.py:6) 2",
            "run (/usr/lib/python3.11/threading.py:1) 1",
        ]
    )
    layers, total = profile.split(raw)
    assert total == 6
    by_prefix = {name.split(" ")[0]: n for name, n in layers.items()}
    assert by_prefix == {"notifier": 3, "Firestore": 2, "standard": 1}


def test_paired_ratios_are_the_median_of_each_rounds_ratio():
    from benchmarks.stats import paired_ratio

    # Round 2 met a busy machine for both setups: its pair still says 1.0.
    assert paired_ratio([100.0, 40.0, 110.0], [100.0, 40.0, 100.0]) == 1.0
    assert paired_ratio([90.0, 30.0], [100.0, 100.0, 100.0]) == pytest.approx(0.6)  # unpaired


def test_each_round_runs_every_setup_once_with_the_function_and_the_http_floor_back_to_back():
    from benchmarks import throughput

    setups = [throughput._Setup(name, None, None) for name in throughput.SETUPS]
    firsts, places = [], set()
    for round_ in range(8):
        groups = throughput._order(setups, round_)
        names = [s.name for group in groups for s in group]
        assert sorted(names) == sorted(throughput.SETUPS)
        paired = [[s.name for s in group] for group in groups if len(group) == 2]
        assert len(paired) == 1 and set(paired[0]) == {throughput.FUNCTION, throughput.HTTP_FLOOR}
        at = names.index(throughput.FUNCTION)
        other = names.index(throughput.HTTP_FLOOR)
        assert abs(at - other) == 1  # nothing runs between the pair the targets compare
        firsts.append(names[min(at, other)])
        places.add(min(at, other))
    assert firsts[:2] == [throughput.FUNCTION, throughput.HTTP_FLOOR]  # first in turn
    assert places == set(range(len(throughput.SETUPS) - 1))  # the others rotate around them


def test_cold_start_times_our_modules_from_bytecode_as_it_times_the_dependencies(monkeypatch):
    """Whatever the environment says about writing bytecode (here: never), every module main
    imports from the repository has its .pyc before a cold import is timed."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    sources = [ROOT / "main.py", *sorted((ROOT / "notifier").rglob("*.py"))]
    for source in sources:
        cached = importlib.util.cache_from_source(str(source))
        Path(cached).unlink(missing_ok=True)
    coldstart.compile_sources()
    missing = [s for s in sources if not Path(importlib.util.cache_from_source(str(s))).exists()]
    assert not missing


def test_the_cold_import_ratio_is_read_inside_one_process_not_across_two():
    """A slow second of the machine in the bare process must not make main look cheap, nor a
    slow one in main's process make it look dear: the target's ratio is main's share of the
    process that imports the dependencies and then main."""
    cold = coldstart.ColdStart(runs=3)
    cold.main_process = [1.40, 1.90, 1.30]  # the two-process pairs: noise either way
    cold.bare_process = [1.35, 1.30, 1.60]
    cold.deps_then_main = [1.40, 1.50, 1.30]
    cold.main_after_bare = [0.040, 0.050, 0.030]
    assert cold.ratio == pytest.approx(1.40 / 1.36)
    assert cold.process_ratio == pytest.approx(1.40 / 1.35)
    assert cold.process_ratios[1] == pytest.approx(1.90 / 1.30)


def test_the_cold_import_pairs_run_each_first_in_turn(monkeypatch):
    """The first process of a back-to-back pair meets a colder machine: neither side always."""
    run: list[str] = []

    def python(code, env=None):
        run.append("main" if coldstart.MAIN in code and coldstart.BARE not in code else "other")
        out = '[0.04, ["main"]]' if "json.dumps" in code else "1.0"
        return 1.0, out

    monkeypatch.setattr(coldstart, "_python", python)
    monkeypatch.setattr(coldstart, "compile_sources", lambda: None)
    coldstart.imports(2)
    assert run[0] == "main" and run[3] == "other" and run[4] == "main"
