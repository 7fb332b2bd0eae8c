"""How a training run ends early (diverged, or interrupted with Ctrl-C), or ends having learnt nothing."""

from __future__ import annotations

from ..recognition.recognizer import FaceRecognizer


class TrainingDivergedError(RuntimeError):
    """Training produced NaN or infinity and stopped.

    ``epoch`` is the epoch (1-based) in which it happened; ``model`` is a recognizer
    with the weights of the last good epoch (never NaN); ``checkpoint`` is the path
    of the last good checkpoint, if the run wrote one.
    """

    def __init__(self, message: str, *, epoch: int, model: FaceRecognizer, checkpoint: str | None):
        super().__init__(message)
        self.epoch = epoch
        self.model = model
        self.checkpoint = checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training. ``epochs_done`` epochs are complete; ``checkpoint`` holds them, if given."""

    def __init__(self, *, epochs_done: int, epochs: int, checkpoint: str | None):
        self.epochs_done = epochs_done
        self.epochs = epochs
        self.checkpoint = checkpoint
        if checkpoint is None:
            hint = "no checkpoint was written: pass checkpoint= to be able to resume"
        else:
            hint = f"saved a checkpoint to {checkpoint}; continue with train(..., resume={checkpoint!r})"
        super().__init__(f"training interrupted after {epochs_done} of {epochs} epochs; {hint}")


class TrainingStalledWarning(UserWarning):
    """Training ended no better than chance: the model does not tell the people apart.

    The trained model names its own training images (without augmentation or dropout)
    about as often right as guessing would (``pyface.train`` returns the model all the
    same: its ``history`` shows the run).
    """
