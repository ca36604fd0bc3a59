"""Looking inside E-I networks: firing statistics, E/I balance, divisive currents, Dale pinning,
gradient norms per parameter kind (forward hooks, zero cost when not recording), their plots,
and the ablation/depth study (``eisnn study``)."""

from .recorder import GradientNorms, LayerProbe, Recorder, diagnosed_layers, weight_samples
from .stats import current_stats, current_sums, dale_pinned, firing_stats, spike_counts
from .training import TrainingDiagnostics

__all__ = [
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
