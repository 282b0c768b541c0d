"""`depthdet bench` joint section: the detector + depth pair against one joint model.

Both pipelines run the same raw frame, interleaved, in one process: end to end (decode,
both models or the one, fusion) and each network alone on its own input. The speed-up
is the pair's end-to-end p50 over the joint model's (issue 14's target: >= 1.5 at the
same input sizes on the CPU); speed does not depend on the weights, so a random-weights
export (`depthdet export --random-weights --arch joint_yolov5n`) measures it.

Each end-to-end frame also records the CPU time the process spent on it (all threads):
on a machine that other work keeps busy, wall times swing with the share of the cores
each variant gets (the pair's two thread pools claim more of it than the joint model's
one), while the CPU time per frame stays the work the frame takes.
"""
import os
import time

from depthdet_ros.bench.inprocess import interleave, IsolatedModels, process_frame

SPEEDUP_TARGET = 1.5
SERIES = ('end_to_end_pair', 'end_to_end_joint', 'detector_alone', 'depth_alone',
          'joint_alone', 'cpu_pair', 'cpu_joint')


def _timed_frame(pipeline, frame, camera, label):
    """Run one frame end to end; returns {'end_to_end_LABEL': ms, 'cpu_LABEL': CPU ms}."""
    cpu = time.process_time()
    wall_ms = process_frame(pipeline, frame, camera)[0]['end_to_end']
    return {f'end_to_end_{label}': wall_ms,
            f'cpu_{label}': (time.process_time() - cpu) * 1e3}


def measure_joint(pair, joint, frame, camera, iterations, warmup, progress=None):
    """Time the pair and the joint pipeline, interleaved; returns {series: summary}."""
    from depthdet_ros.core.image import decode_raw

    rgb = decode_raw(frame.encoding, frame.height, frame.width, frame.step, frame.data)
    pair_alone = IsolatedModels(pair, rgb)
    # The joint model stands in the detector's place: its input is the letterbox.
    joint_alone = IsolatedModels(joint, rgb)
    variants = [
        ('end_to_end_pair', lambda: _timed_frame(pair, frame, camera, 'pair')),
        ('end_to_end_joint', lambda: _timed_frame(joint, frame, camera, 'joint')),
        ('detector_alone', pair_alone.detector), ('depth_alone', pair_alone.depth),
        ('joint_alone', joint_alone.detector)]
    samples = interleave(variants, iterations, warmup, progress=progress)
    return samples.summaries(list(SERIES))


def joint_record(pair, joint, stages):
    """Return the joint section of a bench result: models, inputs, p50s and speed-ups."""
    from depthdet_ros.bench.stats import ratio

    alone = stages['detector_alone']['p50'] + stages['depth_alone']['p50']
    return {
        'models': {'detector': pair.models.detector_path, 'depth': pair.models.depth_path,
                   'joint': joint.models.joint_path},
        'inputs': {'detector': f'{pair.detector.input_w}x{pair.detector.input_h}',
                   'depth': f'{pair.depth.input_w}x{pair.depth.input_h}',
                   'joint': f'{joint.joint.input_w}x{joint.joint.input_h}'},
        'stages_ms': stages,
        'speedup_end_to_end': ratio(stages['end_to_end_pair']['p50'],
                                    stages['end_to_end_joint']['p50']),
        'speedup_networks_alone': ratio(alone, stages['joint_alone']['p50']),
        'speedup_cpu_time': ratio(stages['cpu_pair']['p50'], stages['cpu_joint']['p50']),
        'target': SPEEDUP_TARGET}


def render_joint(record):
    """Markdown table of the joint section: the pair and the joint model side by side."""
    models = ', '.join(f'{kind} `{os.path.basename(path)}` ({record["inputs"][kind]})'
                       for kind, path in record['models'].items())
    stages = record['stages_ms']

    def ms(key):
        value = stages[key]['p50']
        return '-' if value is None else f'{value:.1f}'

    def times(value):
        return '-' if value is None else f'{value:.2f}'

    alone = '-' if None in (stages['detector_alone']['p50'], stages['depth_alone']['p50']) \
        else f'{stages["detector_alone"]["p50"] + stages["depth_alone"]["p50"]:.1f}'
    end_to_end = record['speedup_end_to_end']
    verdict = '' if end_to_end is None else \
        ('met' if end_to_end >= record['target'] else 'not met')
    return [f'Pair vs joint model ({models}).', '',
            '| Interleaved, p50 ms | pair | joint | pair / joint |', '|---|---:|---:|---:|',
            f'| networks alone (detector + depth) | {alone} | {ms("joint_alone")} | '
            f'{times(record["speedup_networks_alone"])} |',
            f'| end to end, in process | {ms("end_to_end_pair")} | {ms("end_to_end_joint")} | '
            f'{times(end_to_end)} (target >= {record["target"]:g}: {verdict}) |',
            f'| CPU time per frame, end to end (all threads) | {ms("cpu_pair")} | '
            f'{ms("cpu_joint")} | {times(record["speedup_cpu_time"])} |']


def run_section(values, joint_path, pipeline, frame, camera, iterations, warmup,
                progress=None):
    """Build the joint pipeline with the pair's settings, measure both; returns the record.

    `values` are the node parameters the pair (`pipeline`) was built from. Raises
    CliError with one line when the joint model cannot be used.
    """
    import sys

    from depthdet_ros.bench.cli import model_path
    from depthdet_ros.cli import CliError
    from depthdet_ros.core.session import ModelLoadError
    from depthdet_ros.ros.params import build_pipeline

    print(f'comparing the pair with the joint model {joint_path}', file=sys.stderr)
    try:
        joint = build_pipeline(dict(values, joint_model=model_path(joint_path)))
    except (ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from None
    try:
        stages = measure_joint(pipeline, joint, frame, camera, iterations, warmup, progress)
    finally:
        joint.close()
    return joint_record(pipeline, joint, stages)
