"""Montages of synthetic frames: RGB with labelled ground-truth boxes beside coloured depth."""
from typing import Sequence

import cv2
import numpy as np

# Per-class box colours (BGR), distinct enough to tell classes apart.
_COLOURS = [tuple(int(c) for c in cv2.cvtColor(np.uint8([[[h, 220, 255]]]),
                                               cv2.COLOR_HSV2BGR)[0, 0])
            for h in np.linspace(0, 170, 10).astype(np.uint8)]


def depth_colormap(depth: np.ndarray, max_depth: float = 10.0) -> np.ndarray:
    """Colour a metre depth map (near = blue, far = red; no surface = black), BGR."""
    scaled = np.clip(np.nan_to_num(depth, nan=0.0) / max_depth, 0.0, 1.0)
    coloured = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    coloured[~np.isfinite(depth)] = 0
    return coloured


def annotated_rgb(frame, min_visibility: float = 0.0) -> np.ndarray:
    """Return the frame as BGR with each object's box labelled "class depth m"."""
    image = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
    scale = max(frame.rgb.shape[0] / 480.0, 0.5)
    for obj in frame.objects:
        if obj.visibility < min_visibility:
            continue
        colour = _COLOURS[obj.class_id % len(_COLOURS)]
        box = obj.box
        top_left = (int(box.x1), int(box.y1))
        cv2.rectangle(image, top_left, (int(box.x2) - 1, int(box.y2) - 1), colour,
                      max(1, int(round(2 * scale))))
        _label(image, f'{obj.class_name} {obj.depth:.2f} m', top_left, colour, 0.45 * scale)
    return image


def _label(image, text, top_left, background=(0, 0, 0), size=0.45):
    """Write `text` on a filled box whose top-left corner is at `top_left` (kept inside)."""
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, 1)
    x, y = top_left[0], max(top_left[1], height + base)
    cv2.rectangle(image, (x, y - height - base), (x + width, y), background, -1)
    ink = (0, 0, 0) if sum(background) > 300 else (255, 255, 255)
    cv2.putText(image, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, size, ink, 1, cv2.LINE_AA)


def montage(frames: Sequence, columns: int = 2, tile_width: int = 480) -> np.ndarray:
    """Grid of (annotated RGB | depth) pairs, `columns` pairs per row; BGR uint8.

    Each depth tile is coloured from 0 m to its own range (written on the tile,
    rounded up to whole metres), so near tabletop scenes keep their contrast.
    """
    tiles = []
    for frame in frames:
        height = int(round(tile_width * frame.rgb.shape[0] / frame.rgb.shape[1]))
        finite = frame.depth[np.isfinite(frame.depth)]
        max_depth = float(np.ceil(np.percentile(finite, 99))) if finite.size else 1.0
        depth = cv2.resize(depth_colormap(frame.depth, max_depth), (tile_width, height),
                           interpolation=cv2.INTER_NEAREST)
        _label(depth, f'depth 0 - {max_depth:.0f} m', (4, 4))
        rgb = cv2.resize(annotated_rgb(frame), (tile_width, height), interpolation=cv2.INTER_AREA)
        tiles.append(np.hstack([rgb, depth]))
    tile_height = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, tile_height - t.shape[0], 0, 0, cv2.BORDER_CONSTANT)
             for t in tiles]
    blank = np.zeros_like(tiles[0])
    rows = [np.hstack(tiles[i:i + columns] + [blank] * (columns - len(tiles[i:i + columns])))
            for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
