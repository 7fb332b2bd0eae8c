"""The network: LSTM readings of a face pooled into an embedding, a head, and the optimizer."""

from .network import Architecture, Network, init_parameters

__all__ = ["Architecture", "Network", "init_parameters"]
