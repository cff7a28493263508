"""Explicit list of the modules that register models (importing them fills the registry)."""
from isp.models import microisp, plain, punet, syenet, unet, unet_ref  # noqa: F401
