"""One flat training config: dataclass defaults <- --config file.yaml <- CLI flags.

An unknown key (in YAML or in code) is an error; the resolved config is written to the run
folder as config.yaml, and `--resume` reads it back.
"""
import dataclasses
import os

import yaml

from data import cache_mode, challenge
from data.errors import DataError
from data.atomic import write_text
from isp.errors import ISPError


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a training run (see `isp train --help` for each meaning)."""

    name: str = ""                   # run folder name under runs_dir; "" -> <model>-<timestamp>
    runs_dir: str = "runs"
    data: str = ""                   # dataset root; "" -> built-in default data
    raw_dir: str = ""                # RAW folder name inside each split of a custom layout ("" -> detected)
    rgb_dir: str = ""                # RGB folder name inside each split of a custom layout ("" -> detected)
    val_fraction: float = 0.1        # used only when the dataset has no val/ split
    model: str = "unet_s"
    init: str = ""                   # `isp import` folder or trained run whose model + weights training starts from
    epochs: int = 10
    steps_per_epoch: int = 0         # 0 -> one pass over the training pairs
    batch_size: int = 16
    crop: int = 64                   # packed patch size (RAW crop is 2x, RGB target 2x)
    augment: bool = True
    cache: str = "auto"              # auto | memory | disk | none (old configs: true = memory, false = none)
    lr: float = 2e-3
    warmup_epochs: float = 0.5
    min_lr_ratio: float = 0.02       # cosine decay ends at lr * min_lr_ratio
    l1_weight: float = 1.0
    charbonnier: bool = True         # robust L1 (sqrt(x^2 + eps^2))
    ssim_weight: float = 0.0
    msssim_weight: float = 0.15
    color_weight: float = 0.05
    perceptual_weight: float = 0.0
    vgg_weights: str = ""            # local VGG19 notop .h5 file, needed for perceptual_weight > 0
    mixed_precision: bool = False
    seed: int = 0
    val_images: int = 0              # 0 -> every val pair
    qat_epochs: int = 2
    qat_lr: float = 2e-4
    strategy: str = "default"        # default | mirrored | multiworker
    cfa: str = challenge.CFA
    channel_order: str = ",".join(challenge.CHANNEL_ORDER)
    black_level: str = f"{challenge.BLACK_LEVEL:g}"  # or "auto": estimated from the training RAWs at the start
    white_level: str = f"{challenge.WHITE_LEVEL:g}"  # or "auto"

    def __post_init__(self):
        if self.strategy not in ("default", "mirrored", "multiworker"):
            raise ISPError(f"strategy must be default, mirrored or multiworker, got {self.strategy!r}")
        for key in ("epochs", "batch_size", "crop"):
            if getattr(self, key) < 1:
                raise ISPError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.qat_epochs < 0:
            raise ISPError("qat_epochs must be >= 0")
        try:
            self.cache = cache_mode.parse(self.cache)
        except DataError as exc:
            raise ISPError(str(exc)) from None


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}

HELP = {
    "name": "run folder name under --runs-dir (default: <model>-<timestamp>)",
    "runs_dir": "folder that holds run folders",
    "data": "dataset root in the UltraISP or Zurich RAW-to-RGB layout (detected from the folder names), or any "
            "paired layout with --raw-dir/--rgb-dir (default: built-in data synthesised from scikit-image photos)",
    "raw_dir": "RAW folder name inside each split of another paired layout (<root>/<split>/NAME/<i>.png); "
               "with --rgb-dir",
    "rgb_dir": "RGB target folder name inside each split of another paired layout, index-matched to --raw-dir",
    "val_fraction": "share of train held out for validation when the dataset has no val/ split",
    "model": "registered model name (see `isp models`); ignored with --init, which brings its own model",
    "init": "start from a model instead of a fresh one: an `isp import` output folder (an imported PyTorch/ONNX "
            "model) or a trained run folder (its best float weights), e.g. to fine-tune on a new sensor",
    "epochs": "float training epochs",
    "steps_per_epoch": "optimizer steps per epoch (0: one pass over the training pairs)",
    "batch_size": "global batch size (split across replicas under a distribution strategy)",
    "crop": "packed training patch size; the RAW crop is 2x this and the RGB target too",
    "augment": "random flips and 90-degree rotations (CFA-safe)",
    "cache": "decoded training pairs, read once: memory (in the process), disk (flat files in $ISP_CACHE_DIR/"
             "decoded, read by index; bounded memory at any dataset size), none (decode every epoch), or auto "
             "(memory when the estimated decoded size fits min(half of MemAvailable, 2 GB), else disk); "
             "--no-cache = none; old configs' true/false mean memory/none",
    "lr": "peak learning rate of Adam",
    "warmup_epochs": "linear warm-up length in epochs (from lr/10 to lr)",
    "min_lr_ratio": "cosine decay ends at lr times this",
    "l1_weight": "weight of the L1 (or Charbonnier) loss",
    "charbonnier": "use the robust Charbonnier form of L1",
    "ssim_weight": "weight of the 1-SSIM loss",
    "msssim_weight": "weight of the 1-MS-SSIM loss",
    "color_weight": "weight of the colour (cosine) loss",
    "perceptual_weight": "weight of the VGG19 perceptual loss (needs --vgg-weights)",
    "vgg_weights": "local Keras VGG19 notop ImageNet weights .h5 (nothing is downloaded)",
    "mixed_precision": "mixed float16 for the float stage (useful on GPUs; slow on CPUs)",
    "seed": "seed of initialisation, data order, augmentation and the val split",
    "val_images": "validate on at most this many val pairs (0: all)",
    "qat_epochs": "quantization-aware fine-tuning epochs after float training (0: skip QAT)",
    "qat_lr": "peak learning rate of the QAT stage",
    "strategy": "tf.distribute strategy: default (one device), mirrored (all local GPUs), multiworker (TF_CONFIG)",
    "cfa": "sensor CFA pattern: RGGB, BGGR, GRBG or GBRG",
    "channel_order": "packed channel order, names R,Gb,Gr,B (Gb: first green of the cell in raster order)",
    "black_level": "black level: one value, 4 comma-separated values in channel order, or 'auto' (estimated "
                   "from the data)",
    "white_level": "raw value mapped to 1.0 (challenge: 1020), or 'auto' (estimated from the data)",
}


def _coerce(key, value):
    """Convert `value` to the declared type of field `key` (bool accepts yes/no/true/false/1/0)."""
    kind = type(FIELDS[key].default)
    if key == "cache":
        return value if isinstance(value, bool) else str(value)  # TrainConfig parses it (old configs: bools)
    if kind is bool and isinstance(value, str):
        lowered = value.lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no"):
            raise ISPError(f"config key {key!r} expects true/false, got {value!r}")
        return lowered in ("1", "true", "yes")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ISPError(f"config key {key!r} expects {kind.__name__}, got {value!r}") from None


def resolve(overrides=None, config_file=None, base=None):
    """TrainConfig from `base` (or defaults) <- YAML `config_file` <- `overrides` (a dict).

    Unknown keys raise ISPError naming the key and the file.
    """
    values = dataclasses.asdict(base) if base else {}
    sources = []
    if config_file:
        sources.append((config_file, load_yaml(config_file)))
    sources.append(("command line", overrides or {}))
    for origin, mapping in sources:
        for key, value in mapping.items():
            if key not in FIELDS:
                raise ISPError(f"{origin}: unknown config key {key!r}; valid keys: {', '.join(FIELDS)}")
            values[key] = _coerce(key, value)
    return TrainConfig(**values)


def load_yaml(path):
    """Dict from a YAML config file; ISPError for a missing or malformed file."""
    if not os.path.isfile(path):
        raise ISPError(f"{path}: config file not found")
    try:
        with open(path) as f:
            mapping = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise ISPError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(mapping, dict):
        raise ISPError(f"{path}: a config file must be a mapping of key: value")
    return mapping


def save(config, path):
    """Write the resolved config as YAML (atomically)."""
    write_text(path, yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
