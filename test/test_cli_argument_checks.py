"""Bad arguments to `depthdet synth`, `soak`, `bench` and `train`: one line, exit code 2."""
import errno
import json
import os

import numpy as np
import pytest

from depthdet_ros.cli import main
from depthdet_ros.sim import bag as simbag
from eval_bags import CAMERA_INFO, DEPTH, FrameSpec, IMAGE, pinhole, write_eval_bag

TINY_BAG = ['--frames', '1', '--size', '64x48', '--quality', 'fast']


def one_error_line(capsys, command, *words):
    """Check that a refused command said one error line holding every word."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'depthdet {command}: error: '), lines
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize('start_time, frames', [
    ('-5', '1'), ('1e20', '1'), ('nan', '1'), ('inf', '1'),
    ('2147483647', '20'),  # the first stamp fits an int32 of seconds, the last does not
])
def test_synth_bag_refuses_stamps_outside_ros_time_and_writes_nothing(
        tmp_path, capsys, start_time, frames):
    out = tmp_path / 'bag'
    assert main(['synth', 'bag', '--out', str(out), *TINY_BAG, '--frames', frames,
                 '--start-time', start_time]) == 2
    one_error_line(capsys, 'synth', f'--start-time {float(start_time):.17g}', '2^31')
    assert not out.exists()


def test_synth_bag_takes_the_last_second_of_ros_time(tmp_path):
    out = tmp_path / 'bag'
    assert main(['synth', 'bag', '--out', str(out), *TINY_BAG,
                 '--start-time', str(2**31 - 1)]) == 0
    assert (out / 'metadata.yaml').exists()


def test_synth_bag_refuses_an_out_folder_it_cannot_create(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    out = tmp_path / 'file' / 'bag'
    assert main(['synth', 'bag', '--out', str(out), *TINY_BAG]) == 2
    one_error_line(capsys, 'synth', f'cannot create {out}',
                   f'{tmp_path / "file"} is not a writable folder')


def test_synth_bag_removes_a_bag_it_could_not_finish(tmp_path, capsys, monkeypatch):
    def disk_full(path, *args, **kwargs):
        path.mkdir()
        (path / 'bag.mcap').write_bytes(b'partial')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(simbag, 'write_bag', disk_full)
    out = tmp_path / 'bag'
    assert main(['synth', 'bag', '--out', str(out), *TINY_BAG]) == 2
    one_error_line(capsys, 'synth', f'cannot write {out}: No space left on device')
    assert not out.exists()


@pytest.mark.parametrize('option, value, words', [
    ('--minutes', '-1', ['--minutes -1 must be a positive number']),
    ('--minutes', '0', ['--minutes 0 must be a positive number']),
    ('--minutes', 'nan', ['--minutes nan must be a positive number']),
    ('--minutes', '0.1', ['too short to measure memory growth', '--minutes 0.32 or more']),
    ('--rate', '0', ['--rate 0 must be a positive number']),
    ('--stall-seconds', '-2', ['--stall-seconds -2 must be a positive number']),
    ('--width', '0', ['--width 0 must be a positive number']),
    ('--warmup-fraction', '1', ['--warmup-fraction 1 must be in [0, 1)']),
])
def test_soak_refuses_numbers_it_cannot_run_with(capsys, option, value, words):
    assert main(['soak', option, value]) == 2
    one_error_line(capsys, 'soak', *words)


def test_bench_help_gives_the_exit_code_of_the_gpu_section_without_a_gpu(capsys):
    with pytest.raises(SystemExit):
        main(['bench', '--help'])
    help_text = ' '.join(capsys.readouterr().out.split())
    # A refused section is a CliError, which the command turns into exit code 2.
    assert 'Exits 2 with one line on a machine without.' in help_text


def not_reached(*args, **kwargs):
    raise AssertionError('the work started before the arguments were checked')


@pytest.fixture(scope='module')
def rgbd_bag(tmp_path_factory):
    """Ten 64x48 frames at 10 Hz: /camera/image rgb8 and /camera/depth 32FC1 (0.9 s)."""
    frame = FrameSpec(np.full((48, 64, 3), 90, np.uint8), np.full((48, 64), 2.0, np.float32))
    return write_eval_bag(tmp_path_factory.mktemp('bag') / 'rgbd', [frame] * 10,
                          pinhole(64, 48, 40.0))


def from_bag(bag, out, *args):
    return main(['train', 'from-bag', bag, '--out', str(out), *args])


def assert_split_files_are_the_listed_ones(out, frames):
    for split, count in zip(('train', 'val'), frames):
        images = json.loads((out / split / 'annotations.json').read_text())['images']
        listed = {image[key] for image in images for key in ('file_name', 'depth_file')}
        on_disk = {f'{sub}/{path.name}' for sub in ('rgb', 'depth')
                   for path in (out / split / sub).iterdir()}
        assert (on_disk, len(images)) == (listed, count)


@pytest.mark.parametrize('option, topic, words', [
    ('--depth-topic', IMAGE, ['depth topic /camera/image carries rgb8 images', '32FC1']),
    ('--image-topic', DEPTH, ['image topic /camera/depth carries 32FC1 images', 'rgb8']),
])
def test_from_bag_names_the_encoding_of_a_topic_of_the_wrong_kind(
        rgbd_bag, tmp_path, capsys, option, topic, words):
    # Before: every frame was skipped, and the error blamed --val-seconds.
    out = tmp_path / 'data'
    assert from_bag(rgbd_bag, out, '--val-seconds', '0.25', option, topic) == 2
    one_error_line(capsys, 'train', *words, option)
    assert not out.exists()


def test_from_bag_finds_an_empty_split_before_writing(rgbd_bag, tmp_path, capsys):
    out = tmp_path / 'data'
    assert from_bag(rgbd_bag, out) == 2  # the default 10 s of validation: all 0.9 s of it
    one_error_line(capsys, 'train', '--val-seconds 10 leaves 0 training and 10 validation',
                   'below 0.90')
    assert not out.exists()


@pytest.mark.parametrize('width, height, expected_f', [(128, 96, 40.0), (128, 72, None)])
def test_from_bag_scales_camera_info_as_the_node_does(tmp_path, capsys, width, height,
                                                      expected_f):
    # A CameraInfo of 128x96 for 64x48 images is the same camera resized (f 80 -> 40);
    # one of 128x72 (16:9) describes another camera or a crop: its frames are skipped,
    # where the frames used to get its K stretched onto them.
    frame = FrameSpec(np.full((48, 64, 3), 90, np.uint8), np.full((48, 64), 2.0, np.float32))
    bag = write_eval_bag(tmp_path / 'bag', [frame] * 10, pinhole(width, height, 80.0))
    out = tmp_path / 'data'
    status = from_bag(bag, out, '--val-seconds', '0.25')
    if expected_f is None:
        assert status == 2
        one_error_line(capsys, 'train', '0 training and 0 validation frames',
                       'camera_info of another aspect ratio: 10')
        assert not out.exists()
        return
    assert status == 0
    K = json.loads((out / 'train' / 'annotations.json').read_text())['images'][0]['camera']['K']
    # Pixel centres: c' + 0.5 = (c + 0.5) / 2, c = (128 - 1) / 2.
    assert K == pytest.approx([expected_f, 0, 31.5, 0, expected_f, 23.5, 0, 0, 1])


def test_from_bag_rerun_replaces_the_dataset_and_a_failed_one_keeps_it(rgbd_bag, tmp_path):
    out = tmp_path / 'data'
    assert from_bag(rgbd_bag, out, '--val-seconds', '0.25') == 0
    # Before, the 7 + 3 frames of the first run stayed beside the 4 + 1 listed.
    assert from_bag(rgbd_bag, out, '--val-seconds', '0.25', '--every', '2') == 0
    assert_split_files_are_the_listed_ones(out, (4, 1))
    assert from_bag(rgbd_bag, out, '--val-seconds', '5') == 2  # no training frame left
    assert_split_files_are_the_listed_ones(out, (4, 1))
    assert sorted(os.listdir(out)) == ['train', 'val']  # no staging folder left behind


def test_from_bag_does_not_replace_a_split_folder_it_did_not_write(rgbd_bag, tmp_path, capsys):
    notes = tmp_path / 'data' / 'train' / 'notes.txt'
    notes.parent.mkdir(parents=True)
    notes.write_text('mine')
    assert from_bag(rgbd_bag, tmp_path / 'data', '--val-seconds', '0.25') == 2
    one_error_line(capsys, 'train', 'holds notes.txt', 'choose another --out')
    assert os.listdir(notes.parent) == ['notes.txt']


def test_from_bag_does_not_replace_a_split_with_files_of_the_user_inside(
        rgbd_bag, tmp_path, capsys):
    """Files one level down (train/rgb/README.txt) were deleted by a re-run, exit 0."""
    out = tmp_path / 'data'
    assert from_bag(rgbd_bag, out, '--val-seconds', '0.25') == 0
    mine = out / 'train' / 'rgb' / 'README.txt'
    mine.write_text('mine')
    assert from_bag(rgbd_bag, out, '--val-seconds', '0.25', '--every', '2') == 2
    one_error_line(capsys, 'train', 'holds rgb/README.txt', 'choose another --out')
    assert mine.read_text() == 'mine'


def test_from_bag_skips_frames_without_their_own_camera_info(tmp_path):
    """They were written with the K of an earlier frame; each frame needs its own."""
    frame = FrameSpec(np.full((48, 64, 3), 90, np.uint8), np.full((48, 64), 2.0, np.float32))
    bag = write_eval_bag(tmp_path / 'gaps', [frame] * 10, pinhole(64, 48, 40.0),
                         corrupt={(CAMERA_INFO, 3), (CAMERA_INFO, 4)})
    out = tmp_path / 'data'
    assert from_bag(bag, out, '--val-seconds', '0.25') == 0
    ids = [image['id'] for split in ('train', 'val')
           for image in json.loads((out / split / 'annotations.json').read_text())['images']]
    assert ids == [0, 1, 2, 5, 6, 7, 8, 9]


@pytest.mark.parametrize('command, args, words', [
    ('train from-bag', ['bag', '--out', 'o', '--val-seconds', '-1'],
     ['--val-seconds: must be a number > 0']),
    ('train from-bag', ['bag', '--out', 'o', '--every', '0'], ['--every: must be an integer > 0']),
    # Before: taken as all frames.
    ('train evaluate', ['--data', 'd', '--max-frames', '-1'], ['--max-frames', '>= 0']),
    ('train calibrate-focal', ['--depth', 'x.onnx', '--data', 'd', '-o', 'y.onnx',
                               '--max-frames', '-3'], ['--max-frames', '>= 0']),
    # Before: a ValueError traceback after the model had loaded.
    ('train cross-camera', ['--seed', '-5'], ['--seed: must be an integer >= 0']),
])
def test_train_tools_refuse_numbers_out_of_range(monkeypatch, capsys, command, args, words):
    from depthdet_ros.eval import cross_camera
    monkeypatch.setattr(cross_camera, 'measure', not_reached)
    with pytest.raises(SystemExit) as stop:
        main([*command.split(), *args])
    assert stop.value.code == 2
    one_error_line(capsys, command, *words)


@pytest.mark.parametrize('command', ['depth', 'detector', 'joint'])
@pytest.mark.parametrize('args, words', [
    # Before: "[Errno 2] No such file or directory: 'nope.onnx'", naming no option.
    (['--init-from', 'nope.onnx'], ['--init-from nope.onnx: no such file']),
    # Before: accepted, and the learning rate never halved.
    (['--schedule', 'step'], ['--schedule step', 'give them']),
    # Before: refused only after the data had loaded and training was announced.
    (['--resume'], ['--resume but there is no', 'last.pt']),
    ([], ['last.pt exists: pass --resume']),
])
def test_training_refuses_options_that_cannot_work_before_loading_data(
        tmp_path, monkeypatch, capsys, command, args, words):
    from depthdet_ros.train import cli as train_cli
    monkeypatch.setattr(train_cli, '_datasets', not_reached)
    out = tmp_path / 'run'
    if not args:  # a finished run's folder
        out.mkdir()
        (out / 'last.pt').write_bytes(b'')
    assert main(['train', command, '--data', 'd', '--val-data', 'v', '--out', str(out),
                 *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == '' and len(lines) == 1, captured  # nothing announced
    assert lines[0].startswith('depthdet train: error: ')
    assert all(word in lines[0] for word in words), lines


@pytest.mark.parametrize('args, option', [
    (['evaluate', '--data', 'no-data', '--json', '{out}'], '--json'),
    (['calibrate-focal', '--depth', 'x.onnx', '--data', 'no-data', '-o', '{out}'], '--output'),
    (['cross-camera', '--json', '{out}'], '--json'),
])
@pytest.mark.parametrize('out, problem', [
    ('.', 'is a folder; give a file name'),
    ('file/report', 'cannot create its folder'),
])
def test_train_tools_check_the_output_path_first(
        tmp_path, monkeypatch, capsys, args, option, out, problem):
    from depthdet_ros.eval import cross_camera
    monkeypatch.setattr(cross_camera, 'measure', not_reached)
    (tmp_path / 'file').write_text('')
    path = os.path.normpath(tmp_path / out)
    assert main(['train', *(a.format(out=path) for a in args)]) == 2
    one_error_line(capsys, 'train', f'{option} {path}: {problem}')


@pytest.mark.parametrize('args, words', [
    (['--params-file', '{tmp}/missing.yaml'], ['cannot read params file', 'No such file']),
    (['--params-file', '{tmp}/bad.yaml'], ['is not valid YAML']),
    (['--params-file', '{tmp}/list.yaml'], ['is not a ROS parameters file']),
    (['--json', '{tmp}'], ['--json {tmp}: is a folder']),
    # /proc takes no new file, even from root (whom os.access lets write anywhere).
    (['--json', '/proc/depthdet_soak.json'], ['--json /proc/depthdet_soak.json: cannot write it']),
    (['--params-file', '{tmp}/binary.yaml'], ['is not a UTF-8 text (YAML) file']),
])
def test_soak_checks_its_files_before_starting_the_node(
        tmp_path, monkeypatch, capsys, args, words):
    # Before: the node crashed on the params file ("soak failed: the node crashed",
    # exit 1), or the result was lost to an IsADirectoryError after the whole soak.
    from depthdet_ros.ros import launcher
    monkeypatch.setattr(launcher, 'ros_environment', not_reached)
    (tmp_path / 'bad.yaml').write_text('foo: [unclosed\n')
    (tmp_path / 'list.yaml').write_text('/**: 5\n')
    (tmp_path / 'binary.yaml').write_bytes(bytes([0x8e, 0xff, 0x00, 0x12]) * 64)
    assert main(['soak', *(a.format(tmp=tmp_path) for a in args)]) == 2
    one_error_line(capsys, 'soak', *(w.format(tmp=tmp_path) for w in words))


@pytest.mark.parametrize('out, words', [
    ('.', ['is a folder']),
    ('montage.xyz', ["no picture format '.xyz'", '.png']),
    ('montage', ['no extension', '.png']),
    ('file/montage.png', ['cannot create its folder']),
])
def test_synth_preview_checks_its_out_before_rendering(
        tmp_path, monkeypatch, capsys, out, words):
    pytest.importorskip('mujoco')
    monkeypatch.setattr('depthdet_ros.sim.world.generate_frames', not_reached)
    (tmp_path / 'file').write_text('')
    assert main(['synth', 'preview', '--out', str(tmp_path / out), '--frames', '1']) == 2
    one_error_line(capsys, 'synth', *words)


def test_synth_dataset_refuses_an_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / 'file').write_text('')
    out = tmp_path / 'file'
    assert main(['synth', 'dataset', '--out', str(out), '--frames', '1', '--size', '64x48']) == 2
    one_error_line(capsys, 'synth', f'cannot create output folder {out / "train"}',
                   'choose another --out')


@pytest.mark.parametrize('split', ['', '..', '../escape', 'a/b'])
def test_synth_dataset_split_is_one_folder_name(tmp_path, capsys, split):
    # These wrote into --out itself, outside it, or into nested folders, with exit 0.
    out = tmp_path / 'data'
    with pytest.raises(SystemExit) as exited:
        main(['synth', 'dataset', '--out', str(out), '--frames', '1', '--size', '64x48',
              '--split', split])
    assert exited.value.code == 2
    one_error_line(capsys, 'synth dataset', 'argument --split', 'not a split name')
    assert not out.exists() and not (tmp_path / 'escape').exists()


def test_synth_dataset_names_a_broken_generator_json(tmp_path, capsys):
    split = tmp_path / 'data' / 'train'
    split.mkdir(parents=True)
    (split / 'generator.json').write_text('{broken')
    assert main(['synth', 'dataset', '--out', str(tmp_path / 'data'), '--frames', '1',
                 '--size', '64x48', '--quality', 'fast']) == 2
    one_error_line(capsys, 'synth', f'{split / "generator.json"} is not valid JSON')


def write_split(folder, coco):
    folder.mkdir()
    (folder / 'annotations.json').write_text(coco if isinstance(coco, str) else json.dumps(coco))
    return folder


def test_synth_stats_reads_a_split_folder_or_its_annotations_json(tmp_path, capsys):
    split = write_split(tmp_path / 'val', {
        'images': [{'id': 0, 'scene': 'room'}], 'categories': [{'id': 1, 'name': 'person'}],
        'annotations': [{'category_id': 1, 'depth': 2.5, 'visibility': 1.0, 'area': 900}]})
    assert main(['synth', 'stats', str(split)]) == 0
    by_folder = capsys.readouterr().out
    assert main(['synth', 'stats', str(split / 'annotations.json')]) == 0
    assert capsys.readouterr().out == by_folder


@pytest.mark.parametrize('coco, words', [
    (None, ['is a file; give a split folder']),
    ({'images': [], 'annotations': []}, ['has no categories list']),
    ('{"images": ', ['cannot read']),
    ({'images': [], 'categories': [], 'annotations': [{'category_id': 3}]},
     ['missing key 3']),
])
def test_synth_stats_refuses_what_is_not_a_split(tmp_path, capsys, coco, words):
    if coco is None:
        path = tmp_path / 'notes.txt'
        path.write_text('')
    else:
        path = write_split(tmp_path / 'split', coco)
    assert main(['synth', 'stats', str(path)]) == 2
    one_error_line(capsys, 'synth', *words)


@pytest.mark.parametrize('arch, size, multiple', [
    ('hybrid_mobilenetv2', ['120', '160'], 32),
    ('unet_seed000', ['120', '168'], 16),
])
def test_train_depth_refuses_an_input_size_the_encoder_cannot_halve(
        monkeypatch, capsys, tmp_path, arch, size, multiple):
    """Before: a tensor-size RuntimeError traceback in the first training step."""
    from depthdet_ros.train import cli as train_cli
    monkeypatch.setattr(train_cli, '_datasets', lambda args: (None, None))
    assert main(['train', 'depth', '--data', 'd', '--val-data', 'v', '--out',
                 str(tmp_path / 'run'), '--arch', arch, '--input-size', *size]) == 2
    one_error_line(capsys, 'train', f'--input-size {" ".join(size)}',
                   f'multiples of {multiple} for {arch}')


@pytest.mark.parametrize('args', [
    ['synth', 'stats', '--frames', '1', '--size', '64x48', '--quality', 'fast'],
    ['train', 'depth', '--help'],  # argparse's exit, then Python's flush at exit
])
@pytest.mark.parametrize('unbuffered', ['1', None])
def test_output_into_a_pipe_whose_reader_left_ends_quietly(args, unbuffered):
    """`depthdet synth stats | head` used to end in a BrokenPipeError traceback."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONUNBUFFERED'}
    if unbuffered:
        env['PYTHONUNBUFFERED'] = unbuffered
    proc = subprocess.Popen([sys.executable, '-m', 'depthdet_ros.cli', *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader leaves before the first line is written
    _, err = proc.communicate(timeout=120)
    # argparse drops a help text it cannot write and exits 0 (unbuffered, it fails then).
    assert proc.returncode == 141 or (args[-1] == '--help' and proc.returncode == 0), err
    assert b'Traceback' not in err and b'BrokenPipe' not in err, err


@pytest.mark.parametrize('command', ['depth', 'detector', 'joint'])
def test_train_help_gives_the_defaults_of_the_recipe(capsys, command):
    from depthdet_ros.train.options import TrainOptions
    with pytest.raises(SystemExit) as stop:
        main(['train', command, '--help'])
    assert stop.value.code == 0
    text = ' '.join(capsys.readouterr().out.split())
    assert f'--epochs EPOCHS default: {TrainOptions().epochs}' in text
    assert f'peak learning rate (default: {TrainOptions().lr})' in text
    assert '(default: )' not in text and 'default: True' not in text


def test_an_interrupted_split_says_to_run_its_command_again(tmp_path, capsys):
    split = tmp_path / 'train'
    (split / 'frames').mkdir(parents=True)
    (split / 'frames' / '000000.json').write_text('{}')
    assert main(['synth', 'stats', str(split)]) == 2
    one_error_line(capsys, 'synth', 'has no annotations.json', 'run the same command again')
    assert main(['train', 'evaluate', '--data', str(split)]) == 2
    one_error_line(capsys, 'train', 'annotations.json not found', 'run the same command again')
    (split / 'frames' / '000000.json').unlink()
    assert main(['train', 'evaluate', '--data', str(split)]) == 2
    assert 'again' not in capsys.readouterr().err  # no frames: nothing was interrupted


def test_training_data_may_be_given_as_the_split_annotations_file(tmp_path):
    from depthdet_ros.train.data import SimDataset
    (tmp_path / 'annotations.json').write_text(json.dumps(
        {'images': [], 'annotations': [], 'categories': [{'id': 1, 'name': 'box'}]}))
    split = SimDataset(tmp_path / 'annotations.json')
    assert split.directory == tmp_path and split.class_names == ('box',)


@pytest.mark.parametrize('option', [['--frames', '5'], ['--size', '64x48'], ['--seed', '3'],
                                    ['--scene', 'room'], ['--quality', 'high']])
def test_synth_stats_of_a_dataset_refuses_options_for_fresh_frames(tmp_path, capsys, option):
    """They were ignored without a word: the figures were the dataset's anyway."""
    assert main(['synth', 'stats', str(tmp_path), *option]) == 2
    one_error_line(capsys, 'synth', f'{option[0]} is for fresh frames', 'drop it')
