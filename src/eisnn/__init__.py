"""eisnn: deep normalization-free spiking neural networks with E-I circuits."""
