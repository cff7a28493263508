"""The model registry: self-registration on `import isp.models`, families."""
import pytest

from isp.models import FAMILIES, list_models, model_family, register
from isp.models.unet import DEFAULT_MODEL


def test_families_split_the_registry():
    ours, reference = list_models("ours"), list_models("reference")
    assert DEFAULT_MODEL in ours and "unet3_ref" in reference and "punet" in reference
    assert sorted(ours + reference) == list_models()
    assert all(model_family(name) in FAMILIES for name in list_models())


def test_register_rejects_an_unknown_family():
    with pytest.raises(ValueError, match="family"):
        register("nobody", family="theirs")
