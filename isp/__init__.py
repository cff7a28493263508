"""Learned ISP: models, losses, metrics, training, QAT, full-resolution inference."""
