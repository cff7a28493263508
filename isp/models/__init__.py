"""Model zoo: registry plus our compact U-Nets and the challenge reference architectures.

Importing `isp.models` imports every model module below (an explicit list, no folder scan); each
registers its factories with `@register` (timm's pattern). The registry itself imports no model.
"""
from isp.models.registry import FAMILIES, build, factory_kwargs, list_models, model_family, register  # noqa: F401
from isp.models import microisp, plain, punet, syenet, unet, unet_ref  # noqa: F401,E402
