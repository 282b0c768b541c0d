"""Image decoding for the encodings cameras send, and clear refusals."""
import array

import cv2
import numpy as np
import pytest

from depthdet_ros.core.image import (decode_compressed, decode_compressed_depth, decode_raw,
                                     ImageDecodeError)

RGB = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                [[10, 20, 30], [40, 50, 60], [70, 80, 90]]], np.uint8)


def test_rgb8_is_a_zero_copy_view_with_row_padding():
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = RGB.reshape(2, 9)
    data = array.array('B', padded.tobytes())
    out = decode_raw('rgb8', 2, 3, 12, data)
    np.testing.assert_array_equal(out, RGB)
    assert np.shares_memory(out, np.frombuffer(data, np.uint8))


@pytest.mark.parametrize('encoding,converted', [
    ('bgr8', RGB[..., ::-1]),
    ('rgba8', np.dstack([RGB, np.full((2, 3), 255, np.uint8)])),
    ('bgra8', np.dstack([RGB[..., ::-1], np.full((2, 3), 9, np.uint8)])),
])
def test_colour_encodings(encoding, converted):
    data = np.ascontiguousarray(converted).tobytes()
    out = decode_raw(encoding, 2, 3, 3 * converted.shape[2], data)
    np.testing.assert_array_equal(out, RGB)


def test_mono_and_16_bit_encodings():
    mono = np.array([[0, 128], [255, 7]], np.uint8)
    out = decode_raw('mono8', 2, 2, 2, mono.tobytes())
    assert out.shape == (2, 2, 3) and (out[..., 1] == mono).all()
    # 16 bits keep their high byte, in the byte order the message says (test audit: a
    # decoder ignoring is_bigendian passed).
    for order, bigendian in (('>u2', True), ('<u2', False)):
        mono16 = np.array([[0x1234, 0xFF00]], order)
        out = decode_raw('mono16', 1, 2, 4, mono16.tobytes(), is_bigendian=bigendian)
        assert out[0].tolist() == [[0x12] * 3, [0xFF] * 3], order
    rgb16 = np.array([[0x1234, 0xAB00, 0x0100]], '<u2')
    assert decode_raw('rgb16', 1, 1, 6, rgb16.tobytes()).tolist() == [[[0x12, 0xAB, 0x01]]]


def test_yuv422_and_bayer():
    # Neutral chroma, Y 200 and 50: grey 1.164 (Y - 16) = 214.2 and 39.6 (BT.601), in
    # each packing's byte order (UYVY: U Y0 V Y1; YUY2: Y0 U Y1 V).
    grey = [[[214] * 3, [40] * 3]]
    for encoding, packed in (('yuv422', [128, 200, 128, 50]), ('uyvy', [128, 200, 128, 50]),
                             ('yuv422_yuy2', [200, 128, 50, 128]),
                             ('yuyv', [200, 128, 50, 128])):
        out = decode_raw(encoding, 1, 2, 4, bytes(packed))
        assert out.tolist() == grey, encoding
    bayer = np.zeros((4, 4), np.uint8)
    bayer[0::2, 0::2] = 200  # red sites of an RGGB pattern
    out = decode_raw('bayer_rggb8', 4, 4, 4, bayer.tobytes())
    assert out[1, 1].tolist() == [200, 0, 0]
    out = decode_raw('bayer_rggb16', 4, 4, 8, (bayer.astype('<u2') << 8).tobytes())
    assert out[1, 1].tolist() == [200, 0, 0]


@pytest.mark.parametrize('args,message', [
    (('rgb8', 2, 3, 9, bytes(17)), 'does not match step'),
    (('rgb8', 2, 3, 8, bytes(16)), 'step 8 is smaller'),
    (('weird', 2, 3, 9, bytes(18)), 'unsupported encoding'),
    (('32FC1', 2, 3, 12, bytes(24)), 'depth/scalar image'),
    (('rgb8', 0, 0, 0, b''), 'empty image'),
    (('yuv422', 1, 3, 6, bytes(6)), 'even width'),
])
def test_bad_images_are_refused_with_reasons(args, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_raw(*args)


def test_huge_image_refused_before_reading_data():
    with pytest.raises(ImageDecodeError, match='exceeds the limit'):
        decode_raw('rgb8', 100000, 100000, 300000, b'')


def test_compressed_round_trip_and_corruption(capfd):
    ok, png = cv2.imencode('.png', RGB[..., ::-1])
    np.testing.assert_array_equal(decode_compressed(png.tobytes()), RGB)
    with pytest.raises(ImageDecodeError, match='empty'):
        decode_compressed(b'')
    ok, jpeg = cv2.imencode('.jpg', RGB[..., ::-1])
    with pytest.raises(ImageDecodeError, match='could not be decoded'):
        decode_compressed(jpeg.tobytes()[:20] + b'garbage' * 10)
    # A PNG cut off (or garbled) is refused before libpng, which printed its own
    # "PNG input buffer is incomplete" beside the node's log (outsider round 49).
    for cut in (png.tobytes()[:-1], png.tobytes()[:20] + b'garbage' * 10):
        with pytest.raises(ImageDecodeError, match=r'is not a whole PNG: it does not end '
                                                   r'with the IEND chunk'):
            decode_compressed(cut)
    assert 'libpng' not in capfd.readouterr().err
    # Bytes after the IEND chunk (an encoder's padding) are no cut (review), up to 56
    # (IEND's type and CRC within the last 64 bytes).
    for padding in (16, 48, 56):
        np.testing.assert_array_equal(decode_compressed(png.tobytes() + bytes(padding)), RGB)
    # A depth camera's compressedDepth PNG cut off: the same check (no libpng message).
    depth = np.full((4, 6), 1500, np.uint16)
    cut_depth = cv2.imencode('.png', depth)[1].tobytes()[:-1]
    with pytest.raises(ImageDecodeError, match='is not a whole PNG'):
        decode_compressed_depth(bytes(12) + cut_depth, '16UC1; compressedDepth png')
    assert 'libpng' not in capfd.readouterr().err
    # A depth camera's compressedDepth topic wired to `image`: said so (it was "could not
    # be decoded").
    with pytest.raises(ImageDecodeError, match=r"'32FC1; compressedDepth png' is a depth "
                                               r'stream \(compressedDepth\)'):
        decode_compressed(bytes(12) + png.tobytes(), image_format='32FC1; compressedDepth png')
