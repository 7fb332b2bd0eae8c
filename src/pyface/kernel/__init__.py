"""The LSTM kernel: the native forward/backward, its NumPy reference and its run-time settings."""

from . import reference
from .lstm import LstmCache, LstmGrads, lstm_backward, lstm_forward, workspace_bytes
from .runtime import get_isa, get_num_threads, info, set_isa, set_num_threads, supported_isas

__all__ = ["reference", "LstmCache", "LstmGrads", "lstm_forward", "lstm_backward", "workspace_bytes",
           "info", "get_isa", "set_isa", "supported_isas", "get_num_threads", "set_num_threads"]
