"""Procedural training images: dead leaves (overlapping discs), a classic model of natural-image
statistics (scale-invariant sizes, occlusion edges), with colours far more varied than a handful
of photos: it widens what the colour and white-balance part of a model sees.
"""
import cv2
import numpy as np

MIN_RADIUS = 8
MAX_RADIUS = 160


def dead_leaves(rng, size=768, discs=3000):
    """Dead-leaves image: `discs` filled circles, radii with density ~ r^-3 in [MIN_RADIUS, MAX_RADIUS],
    random positions and colours, painted back to front -> uint8 RGB [size, size, 3].

    Colours: random hue, saturation and value (HSV uniform), so scenes have any dominant colour; a
    0.7 px blur removes the aliasing of the disc edges.
    """
    background = cv2.cvtColor(rng.uniform(0, [180, 255, 255], (1, 1, 3)).astype(np.uint8), cv2.COLOR_HSV2RGB)
    image = np.broadcast_to(background, (size, size, 3)).copy()
    # Inverse-CDF sampling of p(r) ~ r^-3 on [MIN_RADIUS, MAX_RADIUS].
    u = rng.uniform(0.0, 1.0, discs)
    lo, hi = MIN_RADIUS ** -2.0, MAX_RADIUS ** -2.0
    radii = (lo - u * (lo - hi)) ** -0.5
    hsv = np.stack([rng.uniform(0, 180, discs), rng.uniform(0, 255, discs), rng.uniform(0, 255, discs)], axis=-1)
    colours = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
    centres = rng.uniform(-MAX_RADIUS / 2, size + MAX_RADIUS / 2, (discs, 2))
    for (x, y), radius, colour in zip(centres, radii, colours):
        cv2.circle(image, (int(x), int(y)), int(radius), tuple(int(c) for c in colour), thickness=-1,
                   lineType=cv2.LINE_8)
    return cv2.GaussianBlur(image, (0, 0), 0.7)


def procedural_names(count):
    """The names of `count` procedural images: "procedural.dead_leaves[k]" (one scene, see synth.scene_of)."""
    return [f"procedural.dead_leaves[{k}]" for k in range(count)]


def procedural_photos(count, seed=0, size=768):
    """{procedural_names(count)[k]: uint8 [size, size, 3]}, deterministic for a seed."""
    return {name: dead_leaves(np.random.default_rng([seed, k]), size)
            for k, name in enumerate(procedural_names(count))}
