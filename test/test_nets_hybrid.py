"""Depth nets: shapes, the fast up-convolution, and strict loads of the published layout."""
import contextlib

import pytest

torch = pytest.importorskip('torch')
np = pytest.importorskip('numpy')
onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

from depthdet_ros.cli import main as depthdet  # noqa: E402
from depthdet_ros.core import metadata  # noqa: E402
from depthdet_ros.nets.hybrid import (  # noqa: E402
    DEPTH_ARCHS, UnpoolAsConv, build_depth_net, decoder_widths, interleave_2x2,
    load_authors_checkpoint)

pytestmark = pytest.mark.torch


def published_layout(with_counters=True):
    """Key -> shape of the authors' hyb_net_weights.model, written out from models.md."""
    shapes = {}

    def conv(name, out_ch, in_ch, kh, kw, bias=False):
        shapes[f'{name}.weight'] = (out_ch, in_ch, kh, kw)
        if bias:
            shapes[f'{name}.bias'] = (out_ch,)

    def bn(name, channels):
        for field in ('weight', 'bias', 'running_mean', 'running_var'):
            shapes[f'{name}.{field}'] = (channels,)
        if with_counters:
            shapes[f'{name}.num_batches_tracked'] = ()

    conv('conv1', 64, 3, 7, 7)
    bn('bn1', 64)
    in_ch = 64
    for stage, (blocks, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), 1):
        for index in range(blocks):
            prefix = f'layer{stage}.{index}'
            conv(f'{prefix}.conv1', planes, in_ch, 1, 1)
            bn(f'{prefix}.bn1', planes)
            conv(f'{prefix}.conv2', planes, planes, 3, 3)
            bn(f'{prefix}.bn2', planes)
            conv(f'{prefix}.conv3', planes * 4, planes, 1, 1)
            bn(f'{prefix}.bn3', planes * 4)
            if index == 0:
                conv(f'{prefix}.downsample.0', planes * 4, in_ch, 1, 1)
                bn(f'{prefix}.downsample.1', planes * 4)
            in_ch = planes * 4
    conv('conv2', 1024, 2048, 1, 1, bias=True)
    bn('bn2', 1024)
    kernels = {'A': (3, 3), 'B': (2, 3), 'C': (3, 2), 'D': (2, 2)}
    for stage, (cin, cout) in enumerate(((1024, 512), (512, 256), (256, 128), (128, 64)), 1):
        prefix = f'up_proj{stage}'
        for unpool in ('unpool_main', 'unpool_res', 'main_branch.0', 'residual_branch.0'):
            for letter, (kh, kw) in kernels.items():
                conv(f'{prefix}.{unpool}.conv_{letter}', cout, cin, kh, kw, bias=True)
        bn(f'{prefix}.main_branch.1', cout)
        conv(f'{prefix}.main_branch.3', cout, cout, 3, 3, bias=True)
        bn(f'{prefix}.main_branch.4', cout)
        bn(f'{prefix}.residual_branch.1', cout)
    conv('conv3', 1, 64, 3, 3, bias=True)
    for stage, (skip, dec) in enumerate(((1024, 512), (512, 256), (256, 128), (64, 64)), 1):
        conv(f'con_conv{stage}.conv', dec, skip + dec, 1, 1, bias=True)
    return shapes


ALIASES = (('unpool_main', 'main_branch.0'), ('unpool_res', 'residual_branch.0'))


def alias_of(key):
    """Return the other key naming the same tensor, or None."""
    for first, second in ALIASES:
        for this, other in ((first, second), (second, first)):
            marker = f'.{this}.'
            if key.startswith('up_proj') and marker in key:
                return key.replace(marker, f'.{other}.')
    return None


def random_checkpoint(shapes, seed=0):
    """Random tensors that keep activations finite; alias keys share identical values."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key in state:
            continue
        if key.endswith('num_batches_tracked'):
            value = torch.tensor(7)
        elif key.endswith('running_var') or (len(shape) == 1 and key.endswith('.weight')):
            value = 0.5 + torch.rand(shape, generator=gen)
        elif len(shape) == 1:
            value = 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            value = torch.randn(shape, generator=gen) / fan_in ** 0.5
        state[key] = value
        if alias_of(key) is not None:
            state[alias_of(key)] = value.clone()
    state['conv3.bias'] = torch.tensor([1.0])  # keep most of the ReLU output positive
    return state


@pytest.fixture(scope='module')
def published():
    """(model in eval mode, the random published-layout state_dict loaded into it)."""
    state = random_checkpoint(published_layout(with_counters=True))
    model = build_depth_net('hybrid_resnet50').eval()
    model.load_state_dict(state, strict=True)
    return model, state


SMALL_IMAGE = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@contextlib.contextmanager
def loaded_with(model, state, changes):
    """Load `state` updated with `changes` strictly; put the changed tensors back after."""
    model.load_state_dict(dict(state, **changes))
    try:
        yield model
    finally:
        restore = model.state_dict(keep_vars=True)
        with torch.no_grad():
            for key in changes:
                restore[key].copy_(state[key])


def _predict(model, image=SMALL_IMAGE):
    with torch.no_grad():
        return model(image)


def test_published_layout_is_what_the_model_registers():
    """hybrid_resnet50 registers exactly the published keys and shapes."""
    with torch.device('meta'):
        model = build_depth_net('hybrid_resnet50')
    expected = published_layout(with_counters=True)
    got = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert got == expected


def test_published_net_full_resolution(published):
    """A 256x320 image gives a 128x160 non-negative depth map."""
    model, _ = published
    depth = _predict(model, torch.randn(1, 3, 256, 320))
    assert depth.shape == (1, 1, 128, 160)
    assert torch.isfinite(depth).all() and (depth >= 0).all() and depth.max() > 0


def test_loaded_tensors_land_in_place(published):
    """Every checkpoint tensor ends up under its own key."""
    model, state = published
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_aliases_are_one_module(published):
    """unpool_main/main_branch.0 and unpool_res/residual_branch.0 are one module each."""
    model, _ = published
    for stage in range(1, 5):
        block = getattr(model, f'up_proj{stage}')
        assert block.main_branch[0] is block.unpool_main
        assert block.residual_branch[0] is block.unpool_res


def test_perturbing_both_alias_copies_changes_output(published):
    """A residual-branch unpool weight, changed in both copies, reaches the output."""
    model, state = published
    before = _predict(model)
    key = 'up_proj2.unpool_res.conv_D.weight'
    value = state[key] + 0.05
    with loaded_with(model, state, {key: value, alias_of(key): value.clone()}):
        assert torch.equal(model.up_proj2.residual_branch[0].conv_D.weight, value)
        assert not torch.allclose(_predict(model), before)
    assert torch.equal(_predict(model), before)


def test_head_bias_shifts_positive_depth_exactly(published):
    """conv3 is the last layer before ReLU: its bias shifts positive depths 1:1."""
    model, state = published
    before = _predict(model)
    with loaded_with(model, state, {'conv3.bias': state['conv3.bias'] + 0.25}):
        after = _predict(model)
    positive = before > 0
    assert positive.float().mean() > 0.5
    torch.testing.assert_close(after[positive], before[positive] + 0.25)


def test_disagreeing_alias_copies_are_rejected(published):
    """A file whose two alias copies differ is ambiguous and refused."""
    model, state = published
    changed = dict(state)
    changed['up_proj1.main_branch.0.conv_A.bias'] = state['up_proj1.main_branch.0.conv_A.bias'] + 1
    with pytest.raises(ValueError, match='disagree'):
        model.load_state_dict(changed)


@pytest.mark.parametrize('edit', ['missing', 'unexpected', 'missing_alias'])
def test_strict_load_rejects_wrong_keys(published, edit):
    """Missing or unexpected keys (other than BN counters) fail the load."""
    model, state = published
    changed = dict(state)
    if edit == 'missing':
        del changed['layer3.2.bn2.running_var']
    elif edit == 'missing_alias':
        del changed['up_proj4.residual_branch.0.conv_B.bias']
    else:
        changed['fc.weight'] = torch.zeros(1000, 2048)
    with pytest.raises(RuntimeError, match='Missing key|Unexpected key'):
        model.load_state_dict(changed)


def test_authors_file_without_counters_converts_in_one_command(published, tmp_path):
    """`depthdet export --authors-hybrid FILE` loads a counter-less file and matches PyTorch.

    The CLI goes through load_authors_checkpoint (torch.load weights_only, strict load).
    """
    model, state = published
    without = {k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}
    assert len(without) < len(state)
    path = tmp_path / 'hyb_net_weights.model'
    torch.save(without, path)
    out = tmp_path / 'hybrid.onnx'
    assert depthdet(['export', '--authors-hybrid', str(path), '--input-size', '64', '64',
                     '-o', str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    onnx_depth = session.run(['depth'], {'image': SMALL_IMAGE.numpy()})[0]
    np.testing.assert_allclose(onnx_depth, _predict(model).numpy(), rtol=0, atol=1e-4)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props[metadata.ARCH] == 'hybrid_resnet50'


def test_load_authors_checkpoint_rejects_a_non_state_dict(tmp_path):
    """A file holding something other than a state_dict is refused with a clear error."""
    path = tmp_path / 'bad.model'
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match='expected a state_dict'):
        load_authors_checkpoint(str(path))


def test_missing_counters_tolerated_even_with_version_metadata():
    """Counters may be absent even when the metadata says BN version 2."""
    # torch's own BN fallback only fires for pre-v2 metadata; ours must not depend on it.
    model = build_depth_net('hybrid_resnet18', decoder_width=0.25)
    state = model.state_dict()
    for key in [k for k in state if k.endswith('num_batches_tracked')]:
        del state[key]
    assert state._metadata['bn1']['version'] >= 2
    build_depth_net('hybrid_resnet18', decoder_width=0.25).load_state_dict(state)


def test_unpool_as_conv_hand_example():
    """Paddings and interleave of the fast up-convolution, by hand on a 2x2 input."""
    unpool = UnpoolAsConv(1, 1)
    with torch.no_grad():
        # One-hot kernels at (1, 1): A takes x[i, j], B x[i+1, j], C x[i, j+1], D x[i+1, j+1].
        for letter, bias in zip('ABCD', (0.0, 10.0, 20.0, 30.0)):
            conv = getattr(unpool, f'conv_{letter}')
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
            conv.bias.fill_(bias)
        out = unpool(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = torch.tensor([[1.0, 22.0, 2.0, 20.0],
                             [13.0, 34.0, 14.0, 30.0],
                             [3.0, 24.0, 4.0, 20.0],
                             [10.0, 30.0, 10.0, 30.0]])
    assert torch.equal(out[0, 0], expected)


def test_interleave_pattern_and_odd_sizes():
    """The 2x2 phase pattern and non-square, odd sizes."""
    parts = [torch.full((1, 2, 3, 5), float(v)) for v in (1, 2, 3, 4)]
    out = interleave_2x2(*parts)
    assert out.shape == (1, 2, 6, 10)
    assert torch.equal(out[0, 0, :2, :2], torch.tensor([[1.0, 3.0], [2.0, 4.0]]))
    assert torch.equal(out[:, :, 4:6, 8:10], out[:, :, :2, :2])
    assert UnpoolAsConv(4, 3)(torch.randn(1, 4, 3, 5)).shape == (1, 3, 6, 10)


@pytest.mark.parametrize('arch', sorted(DEPTH_ARCHS))
def test_every_depth_arch_halves_resolution(arch):
    """Every registered arch maps [B,3,H,W] to [B,1,H/2,W/2] (narrowed to stay fast)."""
    kwargs = {} if arch == 'unet_seed000' else {'width': 0.25, 'decoder_width': 0.25}
    model = build_depth_net(arch, **kwargs).eval()
    depth = _predict(model, torch.randn(2, 3, 64, 96))
    assert depth.shape == (2, 1, 32, 48)
    assert (depth >= 0).all()
    assert 96 % model.input_multiple == 0


def test_decoder_widths():
    """Published widths for ResNet-50, scaled ones for lighter encoders."""
    assert decoder_widths(2048) == [1024, 512, 256, 128, 64]
    assert decoder_widths(512) == [256, 128, 64, 32, 16]
    assert decoder_widths(320, 0.5) == [80, 40, 24, 16, 16]


def test_light_variant_width_options_shrink_the_model():
    """Encoder width and decoder_width shrink MobileNetV2 hybrids below 12 MB."""
    def count(**kwargs):
        model = build_depth_net('hybrid_mobilenetv2', **kwargs)
        return sum(p.numel() for p in model.parameters())
    full, half_decoder = count(), count(decoder_width=0.5)
    assert count(width=0.5, decoder_width=0.5) < half_decoder < full
    assert half_decoder * 4 < 12e6  # fits the bundled-model budget as FP32 ONNX


def test_unknown_arch_is_rejected():
    """An unknown registry name raises ValueError."""
    with pytest.raises(ValueError, match='unknown depth arch'):
        build_depth_net('hybrid_vgg16')


@pytest.mark.parametrize('arch, options', [('hybrid_mobilenetv2', 'decoder_width'),
                                           ('unet_seed000', 'filters')])
def test_an_unknown_builder_option_names_the_known_ones(arch, options):
    # Before: a TypeError traceback from the config dataclass (`train depth --arch-kwargs`).
    with pytest.raises(ValueError, match=f'{arch} has no option nosuch; its options: .*{options}'):
        build_depth_net(arch, nosuch=1)
