"""Looking inside E-I networks: firing statistics, E/I balance, divisive currents, Dale pinning,
gradient norms per parameter kind (forward hooks, zero cost when not recording), their plots,
and :class:`DiagnosticsCallback`, which records them in a training run (``diagnostics: true``)."""

from eisnn.train.monitor import spike_counts

from .callback import DiagnosticsCallback
from .recorder import GradientNorms, LayerProbe, Recorder, diagnosed_layers, weight_samples
from .stats import current_stats, current_sums, dale_pinned, firing_stats
from .training import TrainingDiagnostics

__all__ = [
    "DiagnosticsCallback",
    "GradientNorms",
    "LayerProbe",
    "Recorder",
    "TrainingDiagnostics",
    "current_stats",
    "current_sums",
    "dale_pinned",
    "diagnosed_layers",
    "firing_stats",
    "spike_counts",
    "weight_samples",
]
