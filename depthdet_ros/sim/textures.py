"""Procedural, tileable surface textures and colour palettes (numpy only).

Textures are greyscale-to-two-colour patterns on a periodic grid, so they tile
seamlessly on walls and floors; geoms tint them with their own colour.
"""
import colorsys

import numpy as np

TEXTURE_SIZE = 128
PATTERNS = ('checker', 'stripes', 'noise', 'grain', 'tiles', 'dots')

_SKIN_TONES = np.array([[0.98, 0.84, 0.72], [0.91, 0.72, 0.58], [0.78, 0.57, 0.42],
                        [0.6, 0.42, 0.3], [0.42, 0.29, 0.2], [0.3, 0.2, 0.15]])


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def palette_colour(rng: np.random.Generator, palette: str) -> np.ndarray:
    """Draw an RGB colour in [0, 1] typical of a palette ('any', 'skin', 'wood', ...)."""
    if palette == 'skin':
        return np.clip(_SKIN_TONES[rng.integers(len(_SKIN_TONES))] + rng.normal(0, 0.03, 3),
                       0, 1)
    if palette == 'wood':
        return _hsv(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.75), rng.uniform(0.3, 0.85))
    if palette == 'cardboard':
        return _hsv(rng.uniform(0.07, 0.11), rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.85))
    if palette == 'metal':
        return np.full(3, rng.uniform(0.35, 0.9)) * _hsv(rng.uniform(0, 1), 0.08, 1.0)
    if palette == 'dark':
        return _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.6), rng.uniform(0.08, 0.4))
    if palette == 'plant':
        return _hsv(rng.uniform(0.22, 0.4), rng.uniform(0.4, 0.9), rng.uniform(0.25, 0.7))
    if palette == 'neutral':
        return _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.2), rng.uniform(0.45, 0.95))
    if palette == 'any':
        return _hsv(rng.uniform(0, 1), rng.uniform(0.15, 0.95), rng.uniform(0.25, 1.0))
    raise ValueError(f'unknown palette {palette!r}')


def _periodic_noise(rng, size, smoothness):
    """Tileable smooth noise in [0, 1]: white noise low-passed in the Fourier domain."""
    freq = np.fft.fftfreq(size) * size
    radius = np.hypot(freq[:, None], freq[None, :])
    spectrum = np.fft.fft2(rng.standard_normal((size, size)))
    field = np.real(np.fft.ifft2(spectrum / (1.0 + radius) ** smoothness))
    field -= field.min()
    return field / max(float(field.max()), 1e-9)


def texture_pattern(rng: np.random.Generator, pattern: str, size: int = TEXTURE_SIZE):
    """Draw a tileable size x size pattern in [0, 1] (float32)."""
    v, u = np.mgrid[0:size, 0:size] / size  # both in [0, 1): one period per tile
    if pattern == 'checker':
        cells = int(rng.choice([2, 4, 8]))
        value = ((np.floor(u * cells) + np.floor(v * cells)) % 2).astype(np.float64)
    elif pattern == 'stripes':
        ku, kv = int(rng.integers(0, 5)), int(rng.integers(1, 9))
        value = 0.5 + 0.5 * np.sin(2 * np.pi * (ku * u + kv * v))
        value = np.clip((value - 0.5) * rng.uniform(1, 6) + 0.5, 0, 1)
    elif pattern == 'noise':
        value = _periodic_noise(rng, size, rng.uniform(1.2, 2.5))
    elif pattern == 'grain':
        warp = _periodic_noise(rng, size, 2.0)
        rings = int(rng.integers(3, 10))
        value = 0.5 + 0.5 * np.sin(2 * np.pi * (rings * v + rng.uniform(0.5, 2.0) * warp))
    elif pattern == 'tiles':
        rows, cols = int(rng.choice([2, 4, 8])), int(rng.choice([1, 2, 4]))
        mortar = rng.uniform(0.02, 0.08)
        shift = 0.5 * (np.floor(v * rows) % 2) if rng.random() < 0.6 else 0.0
        fu, fv = (u * cols + shift) % 1.0, (v * rows) % 1.0
        # Mortar lines of equal width in u and v (cells are 1/cols wide, 1/rows high).
        value = ((np.minimum(fu, 1 - fu) / cols < mortar / rows)
                 | (np.minimum(fv, 1 - fv) < mortar)).astype(np.float64)
    elif pattern == 'dots':
        cells = int(rng.choice([2, 4, 6, 8]))
        fu, fv = (u * cells) % 1.0 - 0.5, (v * cells) % 1.0 - 0.5
        value = (np.hypot(fu, fv) < rng.uniform(0.15, 0.4)).astype(np.float64)
    else:
        raise ValueError(f'unknown texture pattern {pattern!r}')
    grit = _periodic_noise(rng, size, 0.6)
    return np.clip(value * 0.9 + 0.1 * grit, 0.0, 1.0).astype(np.float32)


def make_texture(rng: np.random.Generator, size: int = TEXTURE_SIZE) -> np.ndarray:
    """Draw a tileable RGB uint8 texture: a pattern between two light colours.

    Colours stay light because geoms multiply the texture by their own colour.
    """
    pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
    value = texture_pattern(rng, pattern, size)[..., None]
    first = _hsv(rng.uniform(0, 1), rng.uniform(0, 0.35), rng.uniform(0.75, 1.0))
    second = _hsv(rng.uniform(0, 1), rng.uniform(0, 0.5), rng.uniform(0.2, 0.8))
    rgb = first * (1.0 - value) + second * value
    return (rgb * 255.0 + 0.5).astype(np.uint8)
