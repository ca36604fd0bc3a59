"""The studies' grids: the paper's ablations and baselines on offline data.

Run by ``experiments/study.py`` (which also writes ``docs/results.md``), on the installed package.
Two studies, each datasets x networks x variants x seeds:

- ``mlp``: spiking MLPs with 2 hidden layers (3 weight layers) and with 10 (11 weight layers);
- ``conv``: the paper's architectures, VGG-8 and ResNet-18, scaled down in width.

Variants: the full E-I method, its four ablations of SPEC section 7, the BN-SNN and a plain SNN
with Kaiming init; a variant names a layer kind (``ei``, ``bn``, ``plain``) and the network an
architecture, and the model is ``<kind>_<architecture>``. Every run is a cached training run
(``cached_runs.py``) with diagnostics on, in ``OUT/<dataset>/<network>/<variant>/seed<k>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cached_runs import QUIET_RUN, SGD_RECIPE, Job, prepare_event_data, run_jobs

VARIANTS: dict[str, dict[str, Any]] = {
    "E-I (full method)": {"kind": "ei"},
    "no E-I Init (standard init)": {"kind": "ei", "init": "standard"},
    "fixed epsilon (no adaptive stab.)": {
        "kind": "ei",
        "stabilization": "epsilon",
        "epsilon": 1e-8,
    },
    "no straight-through estimator": {"kind": "ei", "ste": False},
    "no W_EI gradient scaling": {"kind": "ei", "scale_w_ei_grad": False},
    "BN-SNN": {"kind": "bn"},
    "plain SNN (Kaiming)": {"kind": "plain"},
}
BASE: dict[str, Any] = {**SGD_RECIPE, **QUIET_RUN, "batch_size": 64, "diagnostics": True}


@dataclass(frozen=True)
class Network:
    """An architecture and its options; ``per_dataset`` adds options for one dataset."""

    arch: str
    options: dict[str, Any]
    per_dataset: dict[str, dict[str, Any]] = field(default_factory=dict)

    def settings(self, dataset: str) -> dict[str, Any]:
        return {**self.options, **self.per_dataset.get(dataset, {})}


@dataclass(frozen=True)
class Study:
    """One grid: its key in :data:`STUDIES`, the prefix of its blocks in the document (``name``)
    and of its figures, data, networks, the networks whose per-layer diagnostics are drawn, and
    the training settings that differ from :data:`BASE`."""

    key: str
    name: str
    figures: str
    datasets: dict[str, dict[str, Any]]
    networks: dict[str, Network]
    diagnosed: tuple[str, ...]
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> dict[str, Any]:
        return {**BASE, **self.training}


STUDIES: dict[str, Study] = {
    "mlp": Study(
        "mlp",
        "results",
        "study",
        {
            "digits": {"dataset": "digits", "image_size": 16, "epochs": 15},
            "digits_dvs": {"dataset": "digits_dvs", "epochs": 10},
        },
        {
            "shallow (3 weight layers)": Network("mlp", {"hidden": [128, 128]}),
            "deep (11 weight layers)": Network("mlp", {"hidden": [128] * 10}),
        },
        ("deep (11 weight layers)",),
    ),
    "conv": Study(
        "conv",
        "conv",
        "conv",
        {
            "digits": {"dataset": "digits", "epochs": 8},
            "digits_dvs": {"dataset": "digits_dvs", "epochs": 6},
        },
        {
            "VGG-8 (width 1/4)": Network("vgg8", {"width": 0.25}, {"digits": {"image_size": 32}}),
            "ResNet-18 (width 1/4; 1/8 on digits_dvs)": Network(
                "resnet18",
                {"width": 0.25},
                {"digits": {"image_size": 16}, "digits_dvs": {"width": 0.125}},
            ),
        },
        ("VGG-8 (width 1/4)", "ResNet-18 (width 1/4; 1/8 on digits_dvs)"),
        {"batch_size": 32},
    ),
}


@dataclass(frozen=True)
class RunSpec:
    study: str
    dataset: str
    network: str
    variant: str
    seed: int

    def folder(self, out: Path) -> Path:
        return out / self.dataset / slug(self.network) / slug(self.variant) / f"seed{self.seed}"

    def config(self, data_dir: str) -> dict[str, Any]:
        study = STUDIES[self.study]
        network = study.networks[self.network]
        variant = dict(VARIANTS[self.variant])
        kind = variant.pop("kind")
        return {
            **study.base,
            **study.datasets[self.dataset],
            **network.settings(self.dataset),
            "model": f"{kind}_{network.arch}",
            **variant,
            "seed": self.seed,
            "data_dir": data_dir,
        }


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.split(" (")[0]).strip("_").lower()


def plan(study: str, datasets: Sequence[str], seeds: int) -> list[RunSpec]:
    return [
        RunSpec(study, d, network, v, s)
        for d in datasets
        for network in STUDIES[study].networks
        for v in VARIANTS
        for s in range(seeds)
    ]


def run_study(
    study: str,
    out: Path,
    data_dir: str,
    datasets: Sequence[str],
    seeds: int,
    workers: int,
    echo=print,
) -> list[dict[str, Any]]:
    """Train every run of the study's grid with ``workers`` single-threaded processes."""
    specs = plan(study, datasets, seeds)
    prepare_event_data(datasets, data_dir, STUDIES[study].base["T"])
    jobs: list[Job] = [(s.folder(out), s.config(data_dir), s.__dict__) for s in specs]
    return run_jobs(
        jobs,
        workers,
        lambda r: f"{r['dataset']} | {r['network']} | {r['variant']} | seed {r['seed']}",
        echo,
    )
