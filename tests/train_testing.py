"""Shared helper of the training tests (not a test module)."""
import pytest

from isp import train


def train_interrupted(config, monkeypatch, epoch=1):
    """Start a new run from `config` and stop it with Ctrl-C as epoch index `epoch` (0-based) begins,
    as a user would; the run folder keeps what the finished epochs saved."""
    original_epoch = train.Trainer.train_epoch

    def interrupted_epoch(self, stage, step_fn, index, epochs):
        if index == epoch:
            raise KeyboardInterrupt
        return original_epoch(self, stage, step_fn, index, epochs)

    with monkeypatch.context() as patch:
        patch.setattr(train.Trainer, "train_epoch", interrupted_epoch)
        with pytest.raises(KeyboardInterrupt):
            train.train(config, progress=False)
