"""What every benchmark shares: interleaved timing, result rows, the machine line.

Rows are what ``benchmarks/run.py`` prints and writes to ``benchmarks/results/latest.json``:
``{"name", "ours", "baseline", "unit", "ratio"}``. For speeds and times ``ratio`` is the
speed-up (above 1: ours is faster); for growth measurements (``scaling``) it is the growth
factor of ``ours`` (the larger size) over ``baseline`` (the smaller).
"""

import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROW_KEYS = ("name", "ours", "baseline", "unit", "ratio")


def interleaved(sides, repeats, warmup=1, settle=0.0):
    """``{side: [seconds, ...]}``: each side run ``warmup`` times untimed, then ``repeats`` timed
    rounds in an order that rotates each round, so a slow patch of the machine hits every side.

    ``settle`` seconds of sleep come before each timed run (not timed). Two frameworks in one
    process need it: the worker threads one leaves spinning after its run (PyTorch's OpenMP
    pool, TensorFlow's Eigen pool) take the cores from the other's next run. Measured for the
    PyTorch peer of mha_fusion on 2 cores: mmzoo 0.305 s a run straight after PyTorch, 0.146 s
    after a 0.5 s pause, 0.142 s with no PyTorch run at all.
    """
    if settle < 0:
        raise ValueError(f"settle must be >= 0 seconds. Received: settle={settle!r}")
    for _ in range(warmup):
        for run in sides.values():
            run()
    names = list(sides)
    times = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            if settle:
                time.sleep(settle)
            start = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median(values):
    return statistics.median(values)


def percentile(values, q):
    """The ``q``-th percentile (0-100) by linear interpolation between order statistics."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def speed_row(name, ours, baseline, unit):
    """A row of rates (higher is better): ratio = ours / baseline."""
    return {"name": name, "ours": _round(ours), "baseline": _round(baseline), "unit": unit,
            "ratio": round(ours / baseline, 3)}


def time_row(name, ours, baseline, unit):
    """A row of durations (lower is better): ratio = baseline / ours, the speed-up."""
    return {"name": name, "ours": _round(ours), "baseline": _round(baseline), "unit": unit,
            "ratio": round(baseline / ours, 3)}


def growth_row(name, larger, smaller, unit):
    """A row of a cost at two sizes: ratio = larger / smaller, the growth factor."""
    return {"name": name, "ours": _round(larger), "baseline": _round(smaller), "unit": unit,
            "ratio": round(larger / smaller, 3)}


def _round(value):
    return round(value, 3 if abs(value) < 10 else 1)


def machine_line():
    """The machine, its load and the Keras backend's version (TensorFlow is imported only when it is the backend)."""
    import keras

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    backend = keras.backend.backend()
    version = __import__(backend).__version__
    return (f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load}; "
            f"python {platform.python_version()}, keras {keras.__version__} on {backend} {version}")


def format_table(rows):
    """The rows as an aligned text table."""
    width = max(len("benchmark"), *(len(row["name"]) for row in rows))
    lines = [f"{'benchmark':<{width}}  {'ours':>10}  {'baseline':>10}  {'unit':<11} {'ratio':>7}"]
    for row in rows:
        lines.append(f"{row['name']:<{width}}  {row['ours']:>10}  {row['baseline']:>10}  "
                     f"{row['unit']:<11} {row['ratio']:>6.2f}x")
    return "\n".join(lines)


def report(rows, footnote):
    """Print the machine line, the rows as a table and a footnote on what the ratios mean."""
    print(machine_line())
    print(format_table(rows))
    print(footnote)


def check_registered(names):
    """Stop (``SystemExit``, naming them and the registered ones) if any of ``names`` is not a registered model."""
    import mmzoo

    unknown = [name for name in names if name not in mmzoo.list_models()]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; registered: {', '.join(mmzoo.list_models())}")


def run_benchmark(parse_args, measure, footnote, argv=None):
    """A benchmark script's ``main``: parse, measure, print the table, and write ``--json PATH`` if given."""
    args = parse_args(argv)
    started = time.perf_counter()
    rows = measure(args)
    report(rows, f"({footnote}; {time.perf_counter() - started:.0f} s in all)")
    if getattr(args, "json", None):
        write_json(rows, args.json)
    return rows


def write_json(rows, path):
    """Write the rows atomically and durably: a reader (or a killed run, or a power cut) never
    sees a half-written file. The temporary file and its folder are fsynced before the rename,
    the folder after it (``mmzoo._atomic.write_file``)."""
    from mmzoo._atomic import write_file

    def write(temporary):
        with open(temporary, "w") as stream:
            json.dump([{key: row[key] for key in ROW_KEYS} for row in rows], stream, indent=2)
            stream.write("\n")

    write_file(path, write, suffix=".json")
