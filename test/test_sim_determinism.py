"""Same seed, same frames; different seed, different frames; frames do not depend on order."""
import numpy as np
import pytest

from depthdet_ros.sim.world import SimWorld, frame_layout, generate_frames, generate_sequence

SIZE = (128, 96)


@pytest.fixture(scope='module')
def world():
    with SimWorld(*SIZE) as sim:
        yield sim


def assert_same(a, b):
    assert a.index == b.index and a.scene == b.scene
    for name in ('rgb', 'depth', 'instance_mask', 'class_mask', 'camera_pose'):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert a.objects == b.objects
    assert np.array_equal(a.camera.K, b.camera.K)


def test_same_seed_gives_identical_frames(world):
    first = list(generate_frames(3, 3, 'mixed', (SIZE,), world=world))
    second = list(generate_frames(3, 3, 'mixed', (SIZE,), world=world))
    assert len(first) == len(second) == 3
    for a, b in zip(first, second):
        assert_same(a, b)


def test_different_seed_gives_different_frames(world):
    (a,) = generate_frames(3, 1, 'room', (SIZE,), world=world)
    (b,) = generate_frames(4, 1, 'room', (SIZE,), world=world)
    assert not np.array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.depth, b.depth, equal_nan=True)


def test_a_frame_alone_equals_the_same_frame_inside_a_run(world):
    # Rendered right after other frames in one world, and alone in a fresh one.
    run = list(generate_frames(8, 3, 'mixed', (SIZE,), world=world))
    (alone,) = generate_frames(8, 1, 'mixed', (SIZE,), start=2)
    assert_same(run[2], alone)


def test_layouts_are_pure_functions_of_seed_and_index():
    a, b = frame_layout(9, 5, 'tabletop'), frame_layout(9, 5, 'tabletop')
    assert a.items == b.items and a.room == b.room and a.lights == b.lights
    assert np.array_equal(a.camera.rotation, b.camera.rotation)
    assert frame_layout(9, 6, 'tabletop').items != a.items


def test_independent_frames_stay_as_earlier_versions_drew_them():
    """Splits on disk resume only if a frame's draw never changes (`synth dataset`)."""
    drawn = [frame_layout(5, i, 'mixed', ((640, 480), (480, 640))) for i in range(6)]
    # Drawn by the generator before moving frames were added (commit ad29f43).
    assert [(d.kind, len(d.items), d.camera.width, d.camera.height) for d in drawn] == [
        ('tabletop', 14, 640, 480), ('room', 15, 640, 480), ('tabletop', 14, 640, 480),
        ('tabletop', 11, 480, 640), ('room', 18, 640, 480), ('room', 13, 640, 480)]
    assert [d.camera.fovy_deg for d in drawn] == pytest.approx(
        [44.571694, 69.166587, 34.760701, 58.943172, 75.241482, 62.995566], abs=1e-6)
    assert [list(d.camera.position) for d in drawn[:2]] == [
        pytest.approx([-0.040679, -0.04065, 1.490337], abs=1e-6),
        pytest.approx([-1.373801, 1.127666, 0.806153], abs=1e-6)]
    assert [list(d.items[0].position) for d in drawn[3:5]] == [
        pytest.approx([0.389968, 0.384573, 0.0], abs=1e-6),
        pytest.approx([1.092421, 2.9863, 0.0], abs=1e-6)]
    # Frames 0-7 share a texture block; frame 9 is in the next one.
    assert {d.texture_seed for d in drawn} == {51439671}
    assert frame_layout(5, 9, 'mixed', ((640, 480), (480, 640))).texture_seed == 1139981506


def test_sequences_repeat_exactly(world):
    first = list(generate_sequence(2, 2, 'tabletop', SIZE, world=world))
    second = list(generate_sequence(2, 2, 'tabletop', SIZE, world=world))
    assert len(first) == len(second) == 2
    for a, b in zip(first, second):
        assert_same(a, b)
