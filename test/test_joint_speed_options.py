"""Joint net speed options (nets.joint): proto_width, depth_stride, with export and runtime.

`depth_stride` 4 drops the decoder's last up-projection (depth at a quarter of the
input), `proto_width` narrows the prototype module; both are builder keywords recorded
in the export's arch kwargs, and the runtime reads the depth grid from the output.
"""
import json

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('onnxruntime')

from depthdet_ros.core import metadata  # noqa: E402
from depthdet_ros.core.pipeline import Pipeline, PipelineModels  # noqa: E402
from depthdet_ros.nets import export  # noqa: E402
from depthdet_ros.nets.joint import build_joint  # noqa: E402
from depthdet_ros.nets.registry import build_model  # noqa: E402
from test_nets_export import randomise, read_back  # noqa: E402

pytestmark = pytest.mark.torch

NAMES = ['cup', 'chair', 'person']
LIGHT = {'width_multiple': 0.125, 'num_masks': 4, 'proto_width': 0.5, 'depth_stride': 4}


def parameters(module):
    return sum(p.numel() for p in module.parameters())


def test_depth_stride_and_proto_width_change_only_their_parts():
    full = build_model('joint_yolov5n', 3, width_multiple=0.125, num_masks=4)
    light = build_model('joint_yolov5n', 3, **LIGHT)
    with torch.no_grad():
        rows, protos, depth = light.eval()(torch.rand(1, 3, 64, 96))
    assert rows.shape == (1, 3 * (8 * 12 + 4 * 6 + 2 * 3), 5 + 3 + 4)
    assert protos.shape == (1, 4, 16, 24) and depth.shape == (1, 1, 16, 24)
    assert light.depth_stride == 4 and full.depth_stride == 2
    # Three up-projections and skip fusions instead of four; the last one's input is
    # the stride-4 stage.
    assert len(light.depth_decoder.up) == len(light.depth_decoder.fuse) == 3
    assert len(full.depth_decoder.up) == 4
    # Prototype hidden channels: P3's 32 (256 x w 0.125) x 0.5 = 16.
    assert light.proto.cv1.conv.out_channels == 16 and full.proto.cv1.conv.out_channels == 32
    assert parameters(light.model) == parameters(full.model)  # the shared layers
    assert parameters(light.proto) < parameters(full.proto)
    assert parameters(light.depth_decoder) < parameters(full.depth_decoder)


@pytest.mark.parametrize('kwargs, message', [({'depth_stride': 8}, 'depth_stride'),
                                             ({'proto_width': 0.0}, 'proto_width')])
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_joint('joint_yolov5n', 3, **kwargs)


def test_export_records_the_stride_and_the_pipeline_covers_the_image(tmp_path):
    model = randomise(build_model('joint_yolov5n', 3, **LIGHT))
    with torch.no_grad():
        model.depth_decoder.head.bias.fill_(2.0)  # mostly positive depth
    path = tmp_path / 'light.onnx'
    report = export.export_joint(model, str(path), NAMES, (64, 96), arch_kwargs=LIGHT,
                                 canonical_focal=120.0)
    assert report.max_abs_diff['depth (m)'] <= 1e-4
    props, session = read_back(path)
    assert props[metadata.DEPTH_STRIDE] == '4' and props[metadata.PROTO_STRIDE] == '4'
    assert json.loads(props[metadata.ARCH_KWARGS]) == LIGHT
    assert [o.shape for o in session.get_outputs()][2] == [1, 1, 16, 24]
    pipeline = Pipeline(PipelineModels(joint_path=str(path)))
    try:
        result = pipeline.process(np.full((90, 120, 3), 100, np.uint8))
    finally:
        pipeline.close()
    # Depth on every image pixel (the letterbox's fit_pad view of the 16x24 grid).
    assert result.depth_map.shape == (90, 120)
    assert np.isfinite(result.depth_map).all()
