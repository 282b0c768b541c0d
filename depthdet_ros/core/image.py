"""Camera image decoding to the RGB uint8 arrays the networks take, without ROS.

Raw images are described the way sensor_msgs/Image describes them (encoding,
height, width, step, data, is_bigendian), so the node, bag tools and tests share one
decoder. rgb8 input is returned as a view of the message buffer (no copy).
"""
import cv2
import numpy as np

# Largest image accepted (pixels): 8K (7680x4320) fits with room to spare.
DEFAULT_MAX_PIXELS = 64_000_000


class ImageDecodeError(ValueError):
    """An image that cannot be decoded; the message says why."""


# encoding -> (channels, bytes per channel, OpenCV conversion to RGB or None)
_COLOR = {
    'rgb8': (3, 1, None),
    'bgr8': (3, 1, cv2.COLOR_BGR2RGB),
    '8UC3': (3, 1, cv2.COLOR_BGR2RGB),  # OpenCV's channel order
    'rgba8': (4, 1, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, 1, cv2.COLOR_BGRA2RGB),
    '8UC4': (4, 1, cv2.COLOR_BGRA2RGB),
    'mono8': (1, 1, cv2.COLOR_GRAY2RGB),
    '8UC1': (1, 1, cv2.COLOR_GRAY2RGB),
    'rgb16': (3, 2, None),
    'bgr16': (3, 2, cv2.COLOR_BGR2RGB),
    'rgba16': (4, 2, cv2.COLOR_RGBA2RGB),
    'bgra16': (4, 2, cv2.COLOR_BGRA2RGB),
    'mono16': (1, 2, cv2.COLOR_GRAY2RGB),
    # Bayer: ROS names the top-left 2x2 pattern, OpenCV the one at pixel (1, 1).
    'bayer_rggb8': (1, 1, cv2.COLOR_BayerBG2RGB),
    'bayer_bggr8': (1, 1, cv2.COLOR_BayerRG2RGB),
    'bayer_gbrg8': (1, 1, cv2.COLOR_BayerGR2RGB),
    'bayer_grbg8': (1, 1, cv2.COLOR_BayerGB2RGB),
    'bayer_rggb16': (1, 2, cv2.COLOR_BayerBG2RGB),
    'bayer_bggr16': (1, 2, cv2.COLOR_BayerRG2RGB),
    'bayer_gbrg16': (1, 2, cv2.COLOR_BayerGR2RGB),
    'bayer_grbg16': (1, 2, cv2.COLOR_BayerGB2RGB),
}
# Packed 4:2:2 (2 bytes per pixel, width must be even).
_YUV422 = {
    'yuv422': cv2.COLOR_YUV2RGB_UYVY,
    'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'UYVY': cv2.COLOR_YUV2RGB_UYVY,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
    'yuyv': cv2.COLOR_YUV2RGB_YUY2,
    'YUYV': cv2.COLOR_YUV2RGB_YUY2,
}
_DEPTH_LIKE = {'16UC1', '32FC1', '16SC1', '32SC1', '64FC1', '8SC1'}

SUPPORTED_ENCODINGS = tuple(sorted(set(_COLOR) | set(_YUV422)))


def decode_raw(encoding, height, width, step, data, is_bigendian=False,
               max_pixels=DEFAULT_MAX_PIXELS):
    """Decode a raw image into an HxWx3 RGB uint8 array.

    `data` is any buffer (bytes, array.array, memoryview). Raises ImageDecodeError
    with a message naming the problem for unsupported encodings, sizes or lengths.
    """
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'empty image ({width}x{height})')
    if height * width > max_pixels:
        raise ImageDecodeError(
            f'image {width}x{height} exceeds the limit of {max_pixels} pixels')
    if encoding in _YUV422:
        channels, depth_bytes, code = 2, 1, _YUV422[encoding]
        if width % 2:
            raise ImageDecodeError(f'{encoding} needs an even width, got {width}')
    elif encoding in _COLOR:
        channels, depth_bytes, code = _COLOR[encoding]
    elif encoding in _DEPTH_LIKE:
        raise ImageDecodeError(
            f'encoding {encoding} is a depth/scalar image, not a camera image; '
            'remap `image` to the colour or mono camera topic')
    else:
        raise ImageDecodeError(
            f'unsupported encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}')
    row_bytes = width * channels * depth_bytes
    if step < row_bytes:
        raise ImageDecodeError(
            f'step {step} is smaller than width*bytes_per_pixel = {row_bytes}')
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise ImageDecodeError(
            f'data length {buffer.size} does not match step*height = {step * height}')
    rows = buffer.reshape(height, step)[:, :row_bytes]
    if depth_bytes == 2:
        dtype = np.dtype('>u2' if is_bigendian else '<u2')
        # The row slice is contiguous per row, so this view needs no copy; keep the
        # top 8 bits (16-bit cameras use the high bits).
        pixels = rows.view(dtype) if rows.flags.c_contiguous else \
            np.ascontiguousarray(rows).view(dtype)
        rows = (pixels >> 8).astype(np.uint8)
    image = rows.reshape(height, width, channels) if channels > 1 else rows.reshape(height, width)
    if code is None:
        return image
    if encoding in _YUV422:
        image = np.ascontiguousarray(image)
    return cv2.cvtColor(image, code)


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# The IEND chunk (its type, then a 4-byte CRC) ends a PNG; an encoder may pad after it.
_PNG_END, _PNG_TAIL = b'IEND', 64


def _imdecode(buffer, flags, what):
    """cv2.imdecode, with a truncated PNG refused first (libpng would print its own error)."""
    data = buffer.data
    if data[:8] == _PNG_SIGNATURE:
        tail = bytes(data[-_PNG_TAIL:])
        end = tail.rfind(_PNG_END)
        if end < 0 or len(tail) - end < 8:
            raise ImageDecodeError(f'{what} ({buffer.size} bytes) is not a whole PNG: it '
                                   'does not end with the IEND chunk (cut off?)')
    return cv2.imdecode(buffer, flags)


def decode_compressed(data, max_pixels=DEFAULT_MAX_PIXELS, image_format=''):
    """Decode a JPEG/PNG (sensor_msgs/CompressedImage data and format) into RGB uint8."""
    if 'compresseddepth' in image_format.lower():
        # image_transport's compressedDepth: a depth camera's stream, wired by mistake.
        raise ImageDecodeError(f'compressed image format {image_format!r} is a depth stream '
                               '(compressedDepth), not a camera image: remap image to the '
                               'colour camera')
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise ImageDecodeError('compressed image is empty')
    bgr = _imdecode(buffer, cv2.IMREAD_COLOR, 'compressed image')
    if bgr is None:
        raise ImageDecodeError(f'compressed image ({buffer.size} bytes) could not be decoded')
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise ImageDecodeError(f'image {bgr.shape[1]}x{bgr.shape[0]} exceeds the pixel limit')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# Depth encodings read (REP 118): 32FC1 metres, 16UC1 / mono16 millimetres.
DEPTH_ENCODINGS = ('32FC1', '16UC1', 'mono16')


def depth_encoding(msg) -> str:
    """Return a depth Image's encoding, or a CompressedImage's ('16UC1; compressedDepth png')."""
    encoding = getattr(msg, 'encoding', None)
    return encoding if encoding is not None else msg.format.partition(';')[0].strip()


def decode_depth(encoding, height, width, step, data, is_bigendian=False):
    """Decode a depth image to HxW float32 metres, NaN where invalid.

    32FC1 is metres (NaN, inf or <= 0 invalid); 16UC1/mono16 are millimetres (0
    invalid), as REP 118 describes. Raises ImageDecodeError otherwise.
    """
    if encoding == '32FC1':
        dtype, scale = np.dtype('>f4' if is_bigendian else '<f4'), None
    elif encoding in ('16UC1', 'mono16'):
        dtype, scale = np.dtype('>u2' if is_bigendian else '<u2'), np.float32(0.001)
    else:
        raise ImageDecodeError(f'depth encoding {encoding!r} is not 32FC1 or 16UC1')
    row_bytes = width * dtype.itemsize
    buffer = np.frombuffer(data, dtype=np.uint8)
    if step < row_bytes or buffer.size != step * height:
        raise ImageDecodeError(f'depth image data length {buffer.size} does not match '
                               f'step {step} x height {height}')
    values = np.ascontiguousarray(buffer.reshape(height, step)[:, :row_bytes]).view(dtype)
    depth = values.astype(np.float32)
    if scale is None:
        return _unknown_as_nan(depth)
    depth *= scale
    return _unknown_as_nan(depth, values == 0)


def _unknown_as_nan(depth, invalid=None):
    """Set NaN where `invalid` (a 0 code) or not a finite positive depth (REP 117)."""
    if invalid is not None:
        depth[invalid] = np.nan
    depth[~((depth > 0) & np.isfinite(depth))] = np.nan
    return depth


# image_transport's compressedDepth data starts with a ConfigHeader: the compression's
# kind (int32) and two float32 quantisation parameters, little-endian as written.
_COMPRESSED_DEPTH_HEADER = np.dtype([('kind', '<i4'), ('a', '<f4'), ('b', '<f4')])


def decode_compressed_depth(data, image_format: str) -> np.ndarray:
    """Decode a depth sensor_msgs/CompressedImage to HxW float32 metres, NaN invalid.

    `image_format` as the transports write it: '32FC1; compressedDepth png' (inverse
    depth quantised to uint16 q, depth = a / (q - b), q 0 invalid),
    '16UC1; compressedDepth png' (millimetres), each after the ConfigHeader; or a
    16-bit PNG of millimetres from the plain compressed transport ('16UC1; png ...').
    RVL-coded streams are refused (no maintained decoder to lean on).
    """
    encoding, _, rest = image_format.partition(';')
    encoding, depth_format = encoding.strip(), 'compresseddepth' in rest.lower()
    if encoding not in DEPTH_ENCODINGS:
        raise ImageDecodeError(f'compressed depth format {image_format!r}: encoding is not '
                               '32FC1 or 16UC1')
    if depth_format and 'rvl' in rest.lower():
        raise ImageDecodeError(f'compressed depth format {image_format!r}: RVL is not '
                               'supported; record the png compressedDepth format or raw depth')
    buffer = np.frombuffer(data, dtype=np.uint8)
    header = None
    if depth_format:
        if buffer.size <= _COMPRESSED_DEPTH_HEADER.itemsize:
            raise ImageDecodeError(f'compressedDepth data of {buffer.size} bytes holds no image')
        header = buffer[:_COMPRESSED_DEPTH_HEADER.itemsize].view(_COMPRESSED_DEPTH_HEADER)[0]
        buffer = buffer[_COMPRESSED_DEPTH_HEADER.itemsize:]
    values = _imdecode(buffer, cv2.IMREAD_UNCHANGED, 'compressed depth') \
        if buffer.size else None
    if values is None or values.dtype != np.uint16 or values.ndim != 2:
        raise ImageDecodeError(f'compressed depth ({image_format!r}, {buffer.size} bytes) is '
                               'not a 16-bit single-channel PNG')
    with np.errstate(divide='ignore', invalid='ignore'):
        if encoding == '32FC1':
            if header is None:
                raise ImageDecodeError(f'compressed depth format {image_format!r}: 32FC1 '
                                       'comes only as compressedDepth')
            depth = (np.float32(header['a'])
                     / (values.astype(np.float32) - np.float32(header['b'])))
        else:
            depth = values.astype(np.float32) * np.float32(0.001)
    return _unknown_as_nan(depth, values == 0)
