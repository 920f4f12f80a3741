"""``python -m saxpy --info | --selftest [--require-gpu]``: JSON on stdout, non-zero on failure."""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys

import saxpy


def _info() -> dict:
    count = saxpy.device_count()
    return {"version": saxpy.__version__, "machine": platform.machine(), "python": platform.python_version(),
            "devices": [saxpy.device_info(i) for i in range(count)]}


def _selftest(require_gpu: bool) -> dict:
    result = _info()
    if not result["devices"]:
        try:
            saxpy.saxpy(2.0, [1.0], [1.0])
        except RuntimeError as exc:  # the promised clear error without a GPU
            result["gpu"] = f"skipped: no GPU ({exc})"
        else:
            raise SystemExit("saxpy ran without a CUDA device: that cannot be right")
        result["ok"] = not require_gpu
        return result
    rng = random.Random(0)
    n = 1 << 16
    x = [rng.uniform(-1, 1) for _ in range(n)]
    y = [rng.uniform(-1, 1) for _ in range(n)]
    got = saxpy.saxpy(2.5, x, y)
    worst = max(abs(g - (2.5 * a + b)) for g, a, b in zip(got, x, y))
    arch = saxpy.kernel_arch()
    device = result["devices"][0]
    expected = device["major"] * 100 + device["minor"] * 10
    result.update(gpu="ran", n=n, max_abs_error=worst, kernel=arch,
                  ok=worst < 1e-5 and arch["cuda_arch"] <= expected)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m saxpy")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--info", action="store_true", help="version and CUDA devices")
    group.add_argument("--selftest", action="store_true", help="run the kernels when a GPU is present")
    parser.add_argument("--require-gpu", action="store_true", help="fail when no GPU is present")
    args = parser.parse_args()
    result = _info() if args.info else _selftest(args.require_gpu)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0 if result.get("ok", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
