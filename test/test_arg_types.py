"""Checked option values and output paths of the `depthdet` commands (arg_types)."""
import argparse
import re

import pytest

from depthdet_ros import arg_types
from depthdet_ros.cli import CliError, main


@pytest.mark.parametrize('parse, text, value', [
    (arg_types.positive_int, '3', 3), (arg_types.non_negative_int, '0', 0),
    (arg_types.positive_float, '0.5', 0.5), (arg_types.non_negative_float, '0', 0.0),
    (arg_types.fraction, '1', 1.0), (arg_types.finite_float, '-2.5', -2.5)])
def test_values_in_range_are_parsed(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize('parse, text, words', [
    (arg_types.positive_int, '0', 'an integer > 0'),
    (arg_types.positive_int, '1.5', 'must be an integer'),
    (arg_types.non_negative_int, '-1', 'an integer >= 0'),
    (arg_types.positive_float, 'nan', 'a number > 0'),
    (arg_types.positive_float, 'inf', 'a number > 0'),
    (arg_types.non_negative_float, '-5', 'a number >= 0'),
    (arg_types.fraction, '1.01', 'in [0, 1]'),
    (arg_types.finite_float, 'nan', 'a finite number'),
    (arg_types.finite_float, 'ten', 'must be a number')])
def test_values_out_of_range_are_refused_with_the_rule(parse, text, words):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        parse(text)
    assert words in str(refused.value)


def one_error_line(capsys, command, *words):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'depthdet {command}: error: '), lines
    for word in words:
        assert word in lines[0], lines[0]


TRAIN = ['--data', 'nowhere/train', '--val-data', 'nowhere/val', '--out', 'nowhere/run']


@pytest.mark.parametrize('command, args, words', [
    # Before: NaN losses for 0 or a negative focal, exit 0; a ZeroDivisionError for batch 0;
    # an untrained final.pt for 0 epochs.
    ('train depth', ['--canonical-focal', '-5'], ['--canonical-focal', 'a number >= 0']),
    ('train depth', ['--canonical-focal', 'nan'], ['--canonical-focal']),
    ('train depth', ['--batch-size', '0'], ['--batch-size', 'an integer > 0']),
    ('train depth', ['--epochs', '0'], ['--epochs']),
    ('train detector', ['--lr', '-1'], ['--lr', 'a number > 0']),
    ('train joint', ['--ema-decay', '2'],
     ['--ema-decay', 'in [0, 1]']),
    # Before: a "0 Hz" row, and a negative duration, exit 0.
    ('bench', ['--rates', '0'], ['--rates', 'a number > 0']),
    ('bench', ['--rate-seconds', '-1'], ['--rate-seconds']),
    # Before: accepted, and the bench ran without end.
    ('bench', ['--rate-seconds', '1e12'], ['--rate-seconds', 'in (0, 3600]']),
    ('bench', ['--camera-seconds', '3601'], ['--camera-seconds', 'in (0, 3600]']),
    ('bench', ['--iterations', '1e9'], ['--iterations', 'must be an integer']),
    ('bench', ['--iterations', '1000000000'], ['--iterations', 'in [1, 1000000]']),
])
def test_out_of_range_options_stop_the_command_with_one_line(capsys, command, args, words):
    extra = TRAIN if command.startswith('train') else []
    with pytest.raises(SystemExit) as stop:
        main([*command.split(), *extra, *args])
    assert stop.value.code == 2
    one_error_line(capsys, command, *words)


def test_bench_refuses_an_int8_section_without_models_before_running(capsys):
    # Before, the pipeline section ran first and the error came after it.
    assert main(['bench', '--sections', 'pipeline,int8', '--no-ros']) == 2
    one_error_line(capsys, 'bench', '--int8-detector-model')


def test_bench_refuses_a_json_path_that_is_a_folder_before_running(tmp_path, capsys):
    assert main(['bench', '--sections', 'pipeline', '--json', str(tmp_path)]) == 2
    one_error_line(capsys, 'bench', f'--json {tmp_path}: is a folder')


def test_output_paths(tmp_path):
    target = tmp_path / 'new' / 'deeper' / 'report.json'
    assert arg_types.output_file(str(target), '--json') == str(target)
    assert target.parent.is_dir()  # made before the work, so the write cannot fail on it
    with pytest.raises(CliError, match='is a folder'):
        arg_types.output_file(str(tmp_path), '--json')
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(CliError, match='cannot create its folder'):
        arg_types.output_file(str(blocker / 'report.json'), '--json')
    with pytest.raises(CliError, match='cannot create output folder'):
        arg_types.output_folder(str(blocker), '--out-dir')
    assert arg_types.output_folder(str(tmp_path / 'made'), '--out') == str(tmp_path / 'made')


def test_bench_qos_refuses_a_json_path_that_is_a_folder_before_any_case(tmp_path, capsys):
    # Before: every case ran (minutes), then a traceback lost the results.
    assert main(['bench-qos', '--sizes', '64x48', '--frames', '1', '--json',
                 str(tmp_path)]) == 2
    one_error_line(capsys, 'bench-qos', f'--json {tmp_path}: is a folder')


def test_bench_lists_only_real_choices_for_a_bad_provider(capsys):
    # Before: "(choose from '', 'auto', ...)": the empty default was listed as a choice.
    with pytest.raises(SystemExit):
        main(['bench', '--providers', 'foo'])
    # Python 3.12.8+ prints the choices without quotes.
    line = capsys.readouterr().err.strip()
    assert re.search(r"choose from '?auto'?, '?tensorrt'?, '?cuda'?, '?cpu'?\)", line), line
    with pytest.raises(SystemExit):
        main(['bench', '--input-reliability', 'fast'])
    line = capsys.readouterr().err.strip()
    assert re.search(r"choose from '?auto'?, '?best_effort'?, '?reliable'?\)", line), line


def test_tracking_bench_and_safety_latency_bound_their_sizes(capsys):
    from depthdet_ros.bench import safety_latency, tracking
    for module, args, words in (
            (tracking, ['--objects', '1000000'], 'must be an integer in [1, 1000]'),
            (safety_latency, ['--seconds', '1e12'], 'in (0, 3600]')):
        with pytest.raises(SystemExit) as stop:
            module.main(args)
        assert stop.value.code == 2
        assert words in capsys.readouterr().err
