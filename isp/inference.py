"""Full-resolution inference: run a model over a frame of any size in overlapping, blended tiles.

A frame larger than the model's fixed input or than a memory budget is cut into tiles (in packed
coordinates), each tile is run through `predict`, and the tiles' 2x outputs are blended with
feathering weights into one output image; at most one tile's input, output and weights live at a
time besides the output image.

Blending along each axis, in packed pixels, on every tile side that faces another tile:
    | overlap // 4: weight 0 | overlap - 2 * (overlap // 4): cosine ramp 0 -> 1 | 1 ... |
The outer quarter of the overlap is dropped (it saw the tile's zero padding), the middle half is
cross-faded. The per-axis weights are normalised to sum to 1, so a fully convolutional model whose
receptive-field radius is at most overlap // 4 packed pixels gives the whole-frame result exactly,
and any other model (global pooling, attention) gives a seamless blend. Tile starts are multiples
of ALIGN packed pixels so that strided models (U-Nets) see the same sampling grid in every tile.
"""
import numpy as np
from tqdm import tqdm

from data.image_io import to_uint8
from isp.errors import ISPError

ALIGN = 16                      # tile starts and sizes: multiples of this (packed px), for strided models
DEFAULT_TILE = 512              # packed tile side when the frame is over the memory budget (1024 px out)
DEFAULT_OVERLAP = 64            # packed px shared by neighbouring tiles (exact for receptive field <= 16)
MAX_WHOLE_PIXELS = 1024 * 1024  # packed pixels run in one call when no tile size is given


def _round_up(n, multiple):
    return -(-n // multiple) * multiple


def tile_starts(length, tile, overlap, align=ALIGN):
    """(starts, covered): tile starts along an axis of `length` packed px, for tiles of `tile` px.

    Neighbouring tiles share at least `overlap` px and steps are spread evenly. Starts are
    multiples of `align` (lowered to the largest power of two <= tile - overlap for small tiles);
    the tiles cover [0, covered) with covered >= length.
    """
    if length <= tile:
        return [0], tile
    if overlap < 0 or tile - overlap < 1 or 2 * (overlap - overlap // 4) > tile:
        raise ISPError(f"overlap {overlap} does not fit tile side {tile}: use an overlap between 0 and "
                       f"2/3 of the tile (e.g. --overlap {tile // 4})")
    align = min(align, 2 ** int(np.log2(tile - overlap)))
    units = _round_up(length - tile, align) // align
    max_units = (tile - overlap) // align
    steps = -(-units // max_units)
    return [align * (units * i // steps) for i in range(steps + 1)], tile + units * align


def feather(tile, overlap, first, last):
    """Blending weight float32 [tile] of one tile along an axis; `first`/`last`: at the frame edge."""
    cut = overlap // 4
    ramp_len = overlap - 2 * cut
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_len) + 0.5) / ramp_len)
    edge = np.concatenate([np.zeros(cut), ramp]).astype(np.float32)
    weight = np.ones(tile, np.float32)
    if not first:
        weight[:edge.size] = edge
    if not last:
        weight[tile - edge.size:] = np.minimum(weight[tile - edge.size:], edge[::-1])
    return weight


def axis_weights(starts, tile, overlap, covered):
    """Per-tile weights [tile] along an axis, normalised so that they sum to 1 at every position."""
    weights = [feather(tile, overlap, i == 0, i == len(starts) - 1) for i in range(len(starts))]
    total = np.zeros(covered, np.float32)
    for start, weight in zip(starts, weights):
        total[start:start + tile] += weight
    return [weight / total[start:start + tile] for start, weight in zip(starts, weights)]


def _tile_shape(frame_shape, tile, fixed_shape):
    """(tile_h, tile_w) in packed px: the fixed input, the requested tile, or the memory-budget choice."""
    if fixed_shape is not None:
        return tuple(int(d) for d in fixed_shape)
    h, w = frame_shape
    if tile is None:
        if h * w <= MAX_WHOLE_PIXELS:
            return _round_up(h, ALIGN), _round_up(w, ALIGN)
        tile = DEFAULT_TILE
    if tile < ALIGN or tile % ALIGN:
        raise ISPError(f"tile size {tile} must be a positive multiple of {ALIGN} (packed pixels)")
    return min(tile, _round_up(h, ALIGN)), min(tile, _round_up(w, ALIGN))


def _crop_padded(packed, y, x, th, tw):
    """packed[y:y+th, x:x+tw], mirrored past the bottom/right frame edge -> float32 [1, th, tw, 4]."""
    window = packed[y:y + th, x:x + tw]
    pad = ((0, th - window.shape[0]), (0, tw - window.shape[1]), (0, 0))
    return np.pad(window, pad, mode="symmetric")[None].astype(np.float32, copy=False)


def process_frame(predict, packed, tile=None, overlap=None, fixed_shape=None, progress=True):
    """Run `predict` over a packed RAW frame of any size -> RGB float32 [2h, 2w, 3].

    predict: raw float32 [1, th, tw, 4] in [0, 1] -> rgb [1, 2th, 2tw, 3] (values in [0, 1]).
    packed: [h, w, 4] float in [0, 1].
    tile: packed tile side (multiple of ALIGN); None: the whole frame in one call when it has at
        most MAX_WHOLE_PIXELS packed pixels, else DEFAULT_TILE tiles.
    overlap: packed px shared by neighbouring tiles (see the module docstring for the blending);
        None: DEFAULT_OVERLAP, lowered to half the tile side for small tiles.
    fixed_shape: (th, tw) packed input size of a fixed-shape model; tiles are exactly this size
        (frames smaller than it are mirror-padded and the output cropped). Overrides `tile`.
    Without a fixed shape, tile sides are multiples of ALIGN: a frame whose side is not is
    mirror-padded at the bottom/right edge and the output cropped back to [2h, 2w].
    """
    if packed.ndim != 3 or packed.shape[-1] != 4:
        raise ISPError(f"a packed RAW frame is [h, w, 4], got shape {packed.shape}")
    h, w = packed.shape[:2]
    th, tw = _tile_shape((h, w), tile, fixed_shape)
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, min(th, tw) // 2)
    ys, covered_h = tile_starts(h, th, overlap)
    xs, covered_w = tile_starts(w, tw, overlap)
    wys = axis_weights(ys, th, overlap, covered_h)
    wxs = axis_weights(xs, tw, overlap, covered_w)
    out = np.zeros((2 * h, 2 * w, 3), np.float32)
    with tqdm(total=len(ys) * len(xs), desc="tiles", unit="tile", disable=not progress) as bar:
        for y, wy in zip(ys, wys):
            for x, wx in zip(xs, wxs):
                rgb = np.asarray(predict(_crop_padded(packed, y, x, th, tw)))
                if rgb.shape != (1, 2 * th, 2 * tw, 3):
                    raise ISPError(f"the model returned {list(rgb.shape)} for a tile [1, {th}, {tw}, 4]; "
                                   f"an ISP model must return [1, {2 * th}, {2 * tw}, 3]")
                oh, ow = min(2 * th, 2 * (h - y)), min(2 * tw, 2 * (w - x))
                weight = np.repeat(wy, 2)[:oh, None, None] * np.repeat(wx, 2)[None, :ow, None]
                out[2 * y:2 * y + oh, 2 * x:2 * x + ow] += rgb[0, :oh, :ow] * weight
                bar.update(1)
    return out


def rgb_to_uint8(rgb, band=256):
    """`data.image_io.to_uint8` of a full-resolution RGB float [H, W, 3], `band` rows at a time,
    so its float temporaries stay a few MB even for a 32 MP frame -> uint8 [H, W, 3]."""
    out = np.empty(rgb.shape, np.uint8)
    for y in range(0, rgb.shape[0], band):
        out[y:y + band] = to_uint8(rgb[y:y + band])
    return out
