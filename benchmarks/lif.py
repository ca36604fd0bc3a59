"""Multi-step LIF forward + backward: the fused node (with its CPU kernels, and with PyTorch ops
only) against the eager loop (and SpikingJelly's LIFNode with the same semantics when it is
importable; it is never a dependency of eisnn).

    PYTHONPATH=src python benchmarks/lif.py --threads 2
    # with SpikingJelly installed apart from the project, e.g.
    # pip install --no-deps --target /tmp/sj spikingjelly loguru
    PYTHONPATH=src:/tmp/sj python benchmarks/lif.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from eisnn.allocator import retain_freed_memory
from eisnn.functional import lif_multistep_eager, lif_multistep_fused


def median_seconds(fn: Callable[[], None], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def spikingjelly_lif() -> Callable[[torch.Tensor], torch.Tensor] | None:
    """SpikingJelly's LIFNode(tau=2, decay_input=False, v_reset=None, detach_reset=True,
    sigmoid), multi-step."""
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate
    except ImportError:
        return None
    node = neuron.LIFNode(
        tau=2.0,
        decay_input=False,
        v_reset=None,
        detach_reset=True,
        surrogate_function=surrogate.Sigmoid(alpha=4.0),
        step_mode="m",
    )  # torch backend (default)

    def run(x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(node)
        return node(x)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shape", type=int, nargs="+", default=[4, 32, 64, 32, 32], help="[T, B, ...]"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    retain_freed_memory()  # as the eisnn command does (EISNN_RETAIN_MEMORY=0: glibc's defaults)
    torch.set_num_threads(args.threads)
    x = (torch.rand(args.shape, generator=torch.Generator().manual_seed(0)) * 1.5).requires_grad_()
    grad = torch.rand(args.shape, generator=torch.Generator().manual_seed(1))

    def without_kernels(x: torch.Tensor) -> torch.Tensor:
        previous = os.environ.get("EISNN_CPU_KERNELS")
        os.environ["EISNN_CPU_KERNELS"] = "0"
        try:
            return lif_multistep_fused(x)
        finally:
            if previous is None:
                del os.environ["EISNN_CPU_KERNELS"]
            else:
                os.environ["EISNN_CPU_KERNELS"] = previous

    candidates = {
        "eisnn fused": lif_multistep_fused,
        "eisnn fused, PyTorch ops": without_kernels,
        "eisnn eager": lif_multistep_eager,
    }
    sj = spikingjelly_lif()
    if sj is not None:
        candidates["spikingjelly LIFNode (torch)"] = sj
    print(
        f"LIF forward + backward, input {list(args.shape)}, {args.threads} threads, "
        f"median of {args.repeats}"
    )
    results = {}
    for name, lif in candidates.items():

        def step(lif: Callable[[torch.Tensor], torch.Tensor] = lif) -> None:
            x.grad = None
            lif(x).backward(grad)

        results[name] = median_seconds(step, args.repeats)
    base = results.get("spikingjelly LIFNode (torch)", results["eisnn eager"])
    for name, seconds in results.items():
        print(f"  {name:<30} {seconds * 1e3:8.1f} ms   {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
