"""Profile one training run with cProfile and torch.profiler; print epoch time.

    uv run python profiling/profile_training.py [--epochs 100] [--out DIR] [--processed DIR]

Prints the top functions by cumulative time (cProfile), the top torch operators
(torch.profiler), and the median wall time of one epoch over the processed training split.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from titanic_mlops import data, train

# Kineto, torch.profiler's tracer, probes CUDA when a trace starts; with PyPI's CUDA build of
# torch on a machine without a GPU driver it logs "ERROR … gpuGetDeviceCount failed with
# code 35" (cudaErrorInsufficientDriver) and two USDT start/stop markers on every trace.
# Its threshold comes from KINETO_LOG_LEVEL, read when the first trace starts (0 verbose …
# 4 error, 5 usdt): 6 is above every level.
KINETO_QUIET = "6"


def quiet_kineto_without_gpu() -> None:
    """Silence kineto's CUDA probe on a CPU-only machine (a GPU, or the user's own level, wins)."""
    if not torch.cuda.is_available():
        os.environ.setdefault("KINETO_LOG_LEVEL", KINETO_QUIET)


def epoch_times(x: torch.Tensor, y: torch.Tensor, hp, repeats: int) -> list[float]:
    """Wall time per epoch, measured over ``repeats`` separate runs of ``hp.epochs`` epochs."""
    times: list[float] = []
    for r in range(repeats):
        start = time.perf_counter()
        train.fit_model(x, y, hp, seed=r)
        times.append((time.perf_counter() - start) / hp.epochs)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("profiling/out"))
    parser.add_argument("--processed", type=Path, default=data.PROCESSED_DIR)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    quiet_kineto_without_gpu()

    hp = OmegaConf.load(data.PROJECT_ROOT / "configs/hyperparameters/default.yaml")
    hp.epochs = args.epochs
    if not (args.processed / data.TRAIN_TENSORS).exists():
        data.preprocess(processed_dir=args.processed)
    x, y = data.titanic_dataset("train", args.processed).tensors
    torch.set_num_threads(1)

    profiler = cProfile.Profile()
    profiler.enable()
    train.fit_model(x, y, hp, seed=0)
    profiler.disable()
    profiler.dump_stats(args.out / "train.prof")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(15)
    print("== cProfile, top 15 by cumulative time ==")
    print(text.getvalue())

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        hp_short = OmegaConf.merge(hp, {"epochs": 10})
        train.fit_model(x, y, hp_short, seed=0)
    prof.export_chrome_trace(str(args.out / "train_trace.json"))
    print("== torch.profiler, top 10 operators by self CPU time ==")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))

    times = epoch_times(x, y, hp, args.repeats)
    print(
        f"epoch time: median {statistics.median(times) * 1e3:.2f} ms "
        f"(min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f}) over {args.repeats} runs "
        f"of {hp.epochs} epochs, {len(y)} rows, batch {hp.batch_size}"
    )


if __name__ == "__main__":
    main()
