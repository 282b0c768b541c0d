"""tools/reid_similarity.py on a hand-painted bag: similarities computed by hand."""
import numpy as np
import pytest

from eval_bags import object_behind_box, pinhole, write_eval_bag
from eval_bags import FrameSpec
from tool_scripts import load_tool

RED_BOX, GREEN_BOX, BLUE_BOX = (20, 40, 80, 200), (120, 40, 180, 200), (220, 40, 280, 200)


def test_same_and_other_object_similarities(tmp_path, capsys):
    camera = pinhole(320, 256)
    frames = []
    for k in range(6):  # 10 Hz
        rgb = np.full((256, 320, 3), 90, np.uint8)
        rgb[40:200, 20:80] = (220, 30, 30)
        # The second chair turns from green to half green, half blue at frame 3.
        rgb[40:200, 120:180] = (30, 200, 40)
        if k >= 3:
            rgb[120:200, 120:180] = (40, 40, 220)
        rgb[40:200, 220:280] = (40, 40, 220)  # a cup: another class
        objects = [object_behind_box('chair', RED_BOX, 2.0, 0.3, camera, '1'),
                   object_behind_box('chair', GREEN_BOX, 2.0, 0.3, camera, '2'),
                   object_behind_box('cup', BLUE_BOX, 2.0, 0.3, camera, '3')]
        frames.append(FrameSpec(rgb, None, objects))
    bag = write_eval_bag(tmp_path / 'bag', frames, camera)
    tool = load_tool('reid_similarity')
    found = tool.descriptors(bag)
    assert sorted(found) == [('chair', '1'), ('chair', '2'), ('cup', '3')]
    same, other = tool.pair_similarities(found, 0.25, 0.35, 1)
    # Pairs 0.3 s apart: frames (0, 3), (1, 4), (2, 5) of each object. The red chair and
    # the cup never change (1.0); the green chair, once half blue: sqrt(1/2) with itself.
    assert sorted(same) == pytest.approx([np.sqrt(0.5)] * 3 + [1.0] * 6, abs=0.02)
    # Chair against the other chair: red vs green, green vs red, green vs half blue;
    # no colour in common (the cup is another class: not compared).
    assert len(other) == 6 and max(other) == pytest.approx(0.0, abs=1e-9)
    assert tool.main([bag, '--min-gap', '0.25', '--max-gap', '0.35', '--every', '1']) == 0
    out = capsys.readouterr().out
    assert 'same object, 9 pairs' in out and 'other object of its class, 6 pairs' in out
    assert 'at or above 0.80: same 67%, other 0%' in out
