"""Model registry: `@register("name", family=...)` factories, `list_models()`, `build(name, input_shape, **kwargs)`.

Every factory returns a functional tf_keras model `[B, h, w, 4] -> [B, 2h, 2w, 3]` with values in
[0, 1]; `input_shape` is `(h, w, 4)` or `(None, None, 4)` for a dynamic-shape model. The model
modules register themselves when `isp.models` is imported (its __init__ lists them); this module
imports none of them.
"""
import inspect

from isp.errors import ISPError

FAMILIES = ("ours", "reference")  # our compact U-Nets; the published architectures we compare with
_FACTORIES = {}


def register(name, family="reference"):
    """Decorator: register `factory(input_shape, **kwargs) -> keras.Model` under `name` in `family`."""
    if family not in FAMILIES:
        raise ValueError(f"model {name!r}: family must be one of {FAMILIES}, got {family!r}")

    def decorator(factory):
        if name in _FACTORIES:
            raise ValueError(f"model {name!r} registered twice")
        _FACTORIES[name] = factory
        factory.model_name = name
        factory.family = family
        return factory
    return decorator


def list_models(family=None):
    """Sorted names of every registered model (of one `family` when given)."""
    return sorted(name for name, factory in _FACTORIES.items() if family in (None, factory.family))


def model_family(name):
    """The family ("ours" or "reference") registered model `name` belongs to."""
    return _get(name).family


def factory_kwargs(name):
    """The keyword arguments (with defaults) that `name`'s factory accepts, besides input_shape."""
    params = inspect.signature(_get(name)).parameters
    return {k: p.default for k, p in params.items() if k != "input_shape"}


def build(name, input_shape=(None, None, 4), **kwargs):
    """Build registered model `name` for `input_shape` = (h, w, 4) or (None, None, 4)."""
    factory = _get(name)
    unknown = set(kwargs) - set(factory_kwargs(name))
    if unknown:
        raise ISPError(f"model {name!r} has no argument(s) {sorted(unknown)}; "
                       f"it takes {sorted(factory_kwargs(name))}")
    model = factory(input_shape=tuple(input_shape), **kwargs)
    model.isp_spec = {"name": name, "kwargs": dict(kwargs)}
    return model


def _get(name):
    if name not in _FACTORIES:
        raise ISPError(f"unknown model {name!r}; registered models: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name]
