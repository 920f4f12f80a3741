"""``python -m saxpy_torch --info | --selftest [--require-gpu]``: JSON on stdout, non-zero on failure."""

from __future__ import annotations

import argparse
import json
import platform
import sys

import torch

import saxpy_torch


def _info() -> dict:
    devices = []
    if torch.cuda.is_available():
        driver, runtime = saxpy_torch.OPS.cuda_versions()
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append({"index": i, "name": p.name, "major": p.major, "minor": p.minor,
                            "driver_version": driver, "runtime_version": runtime})
    return {"version": saxpy_torch.__version__, "torch": torch.__version__, "machine": platform.machine(),
            "python": platform.python_version(), "registered": saxpy_torch.registered(), "devices": devices}


def _error(got: torch.Tensor, a: float, x: torch.Tensor, y: torch.Tensor) -> float:
    """Largest difference from the float64 reference."""
    return (got.double().cpu() - (a * x.double() + y.double())).abs().max().item()


def _selftest(require_gpu: bool) -> dict:
    result = _info()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(1 << 16, generator=gen) * 2 - 1, torch.rand(1 << 16, generator=gen) * 2 - 1
    result["cpu_max_abs_error"] = _error(saxpy_torch.saxpy(2.5, x, y), 2.5, x, y)
    ok = all(result["registered"].values()) and result["cpu_max_abs_error"] < 1e-6
    if not result["devices"]:
        result.update(gpu="skipped: no GPU (torch.cuda.is_available() is False)", ok=ok and not require_gpu)
        return result
    got = saxpy_torch.saxpy(2.5, x.cuda(), y.cuda())
    worst = _error(got, 2.5, x, y)
    arch = saxpy_torch.kernel_arch()
    device = result["devices"][0]
    result.update(gpu="ran", n=x.numel(), max_abs_error=worst, kernel={"cuda_arch": arch},
                  ok=ok and worst < 1e-6 and arch <= device["major"] * 100 + device["minor"] * 10)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m saxpy_torch")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--info", action="store_true", help="versions, registered kernels and CUDA devices")
    group.add_argument("--selftest", action="store_true",
                       help="the CPU kernel, and the CUDA one when a GPU is present, against a float64 reference")
    parser.add_argument("--require-gpu", action="store_true", help="fail when no GPU is present")
    args = parser.parse_args()
    result = _info() if args.info else _selftest(args.require_gpu)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0 if result.get("ok", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
