"""Model zoo: registry plus our compact U-Nets and the challenge reference architectures."""
from isp.models.registry import build, factory_kwargs, list_models, register  # noqa: F401
