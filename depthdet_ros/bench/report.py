"""The benchmark result: its JSON fields, ratios against targets, and Markdown tables."""
import os

SCHEMA = 'depthdet-bench/1'
OVERHEAD_TARGET = 1.10          # end-to-end / (detector alone + depth alone), CPU
OVERLAP_TARGET = 0.75           # the same where concurrent execution overlaps the models
SPEEDUP_TARGET = 2.0            # naive baseline / pipeline, equal models and input size

# Every top-level field of a result, and the fields of its nested records.
RESULT_FIELDS = ('schema', 'command', 'created', 'environment', 'config', 'providers',
                 'stages_ms', 'throughput_fps', 'ratios', 'baseline', 'threading', 'int8', 'joint',
                 'ros', 'keep_latest', 'memory', 'not_measured', 'notes')
RATIO_FIELDS = ('overhead', 'speedup_vs_baseline', 'ros_vs_inprocess')
MEMORY_FIELDS = ('rss_mb_after_load', 'rss_mb_end', 'peak_rss_mb', 'node_rss_mb',
                 'gpu_memory_mb')

STAGE_LABELS = (
    ('conversion', 'conversion (image bytes -> RGB array)'),
    ('detector_pre', 'detector pre-processing (letterbox)'),
    ('depth_pre', 'depth pre-processing (resize, crop, normalise)'),
    ('detector', 'detector inference'),
    ('depth', 'depth inference'),
    ('detector_post', 'detector post-processing (decode, NMS)'),
    ('depth_post', 'depth post-processing (warp to image)'),
    ('fusion', 'fusion (per-object depth, 3D)'),
    ('messages', 'message building'),
    ('publish', 'publish (ROS section)'),
    ('end_to_end', 'end to end, in process'),
    ('detector_alone', 'detector inference alone'),
    ('depth_alone', 'depth inference alone'),
    ('baseline', 'naive baseline, per frame (PyTorch default threads)'),
    ('baseline_1_thread', 'naive baseline, per frame (PyTorch 1 thread)'),
    ('node_round_trip', 'through ROS: publish -> node -> detections'),
    ('end_to_end_beside_ros', 'end to end, in process, interleaved with the round trips'),
)


def ratio_record(value, definition, target=None, lower_is_better=True):
    """Return a ratio with its definition, target (if any) and whether it is met."""
    record = {'value': value, 'definition': definition, 'target': target, 'met': None,
              'better': 'lower' if lower_is_better else 'higher'}
    if value is not None and target is not None:
        record['met'] = value <= target if lower_is_better else value >= target
    return record


def overhead_ratio(value, concurrent):
    """Return the overhead ratio record; concurrent models add the overlap target."""
    record = ratio_record(value, 'end-to-end p50 / (detector alone p50 + depth alone p50), '
                          'same sessions', OVERHEAD_TARGET)
    record['overlap_target'] = OVERLAP_TARGET if concurrent else None
    record['overlap_met'] = value <= OVERLAP_TARGET if concurrent and value is not None \
        else None
    return record


def _ms(value):
    return '-' if value is None else f'{value:.1f}' if value >= 10 else f'{value:.2f}'


def _ratio_text(record):
    if record is None or record.get('value') is None:
        return '-', 'not measured'
    value = f'{record["value"]:.2f}'
    checks = []
    if record.get('target') is not None:
        sign = '<=' if record['better'] == 'lower' else '>='
        checks.append(f'target {sign} {record["target"]:.2f}: '
                      f'{"met" if record["met"] else "NOT met"}')
    if record.get('overlap_target') is not None:
        checks.append(f'overlap target <= {record["overlap_target"]:.2f}: '
                      f'{"met" if record["overlap_met"] else "not met"}')
    return value, '; '.join(checks)


def render_markdown(result):
    """Markdown tables of one result: stages, ratios, keep-latest, threading, memory."""
    config, env = result['config'], result['environment']
    lines = [
        f'Models: detector `{os.path.basename(config["detector_model"])}` '
        f'({config.get("detector_arch") or "?"}, input {config["detector_input"]}), depth '
        f'`{os.path.basename(config["depth_model"])}` '
        f'({config.get("depth_arch") or "?"}, input {config["depth_input"]}); frame '
        f'{config["frame_size"]} {config["encoding"]}; providers '
        f'{_providers(result["providers"])}; intra-op threads per session: '
        f'{config["intra_op_threads"] or "onnxruntime default"}, spinning: '
        f'{"on" if config["allow_spinning"] is not False else "off"}, concurrent models: '
        f'{config["concurrent"]}; {config["objects_per_frame"]:.1f} objects/frame.',
        f'Machine: {env.get("cpu") or "?"}, {env["usable_cores"]} usable cores, load average '
        f'{env["load_average"][0]} at start; GPU: {env.get("gpu") or "none"}.',
        '',
        '| Stage | p50 ms | p90 ms | p99 ms | n |',
        '|---|---:|---:|---:|---:|',
    ]
    # The ROS section's own in-process sample, taken beside its round trips: the
    # denominator of the through-ROS ratio.
    stages = {**result['stages_ms'],
              'end_to_end_beside_ros': (result.get('ros') or {}).get('inprocess_end_to_end_ms')}
    for key, label in STAGE_LABELS:
        s = stages.get(key)
        if s and s['n']:
            lines.append(f'| {label} | {_ms(s["p50"])} | {_ms(s["p90"])} | {_ms(s["p99"])} '
                         f'| {s["n"]} |')
    throughput = result['throughput_fps']
    lines += ['', '| Ratio (same run, interleaved) | Value | Target |', '|---|---:|---|']
    labels = {'overhead': 'overhead: end-to-end / (detector alone + depth alone)',
              'speedup_vs_baseline': 'speed-up over the naive baseline',
              'ros_vs_inprocess': 'through ROS / in process interleaved with it (p50 '
                                  'latency)'}
    for key in RATIO_FIELDS:
        value, check = _ratio_text(result['ratios'].get(key))
        lines.append(f'| {labels[key]} | {value} | {check} |')
    default_threads = result['ratios']['speedup_vs_baseline'].get('vs_default_threads')
    if default_threads is not None:
        lines.append('| speed-up over the baseline at PyTorch\'s default threads | '
                     f'{default_threads:.2f} | |')
    # 1000 / the mean latency, where the ratios above take p50s: their quotients differ.
    lines.append('| throughput in process, frames/s (1000 / mean latency) | '
                 f'{_fps(throughput.get("pipeline"))} | |')
    if throughput.get('baseline') is not None:
        lines.append('| throughput of the baseline (its faster setting), frames/s (1000 / mean '
                     f'latency) | {_fps(throughput["baseline"])} | |')
    if result.get('keep_latest'):
        lines += ['', '| Input rate | Sent | Processed | Replaced by newer (node) | '
                  'Not delivered (DDS) | Output rate | Output age p50 ms | p99 ms |',
                  '|---:|---:|---:|---:|---:|---:|---:|---:|']
        for r in result['keep_latest']:
            age = r['output_age_ms']
            lines.append(f'| {r["rate_hz"]:g} Hz | {r["sent"]} | {_count(r["processed"])} | '
                         f'{_count(r["dropped"])} | {_count(r["not_delivered"])} | '
                         f'{_fps(r["output_rate_hz"])} Hz | {_ms(age["p50"])} | '
                         f'{_ms(age["p99"])} |')
    if result.get('threading'):
        threading = result['threading']
        lines += ['', f'| Thread settings ({threading["cores"]} cores), process() | p50 ms | '
                  'p90 ms | p99 ms | vs first |', '|---|---:|---:|---:|---:|']
        first = next(iter(threading['variants'].values()))['p50']
        for name, s in threading['variants'].items():
            relative = f'{s["p50"] / first:.2f}' if first and s['p50'] else '-'
            lines.append(f'| {name} | {_ms(s["p50"])} | {_ms(s["p90"])} | {_ms(s["p99"])} | '
                         f'{relative} |')
    if result.get('int8'):
        lines += [''] + render_int8(result['int8'])
    if result.get('joint'):
        from depthdet_ros.bench.joint import render_joint
        lines += [''] + render_joint(result['joint'])
    memory = result['memory']
    lines += ['', f'Memory: RSS {_mb(memory["rss_mb_after_load"])} after loading the models, '
              f'peak {_mb(memory["peak_rss_mb"])} (bench process); node '
              f'{_mb(memory["node_rss_mb"])}; GPU {_gpu(memory)}.']
    return '\n'.join(lines)


def render_int8(int8):
    """Markdown table of the int8 section: FP32 and INT8 p50 side by side, speed-ups."""
    models = ', '.join(f'{kind} `{os.path.basename(path)}`'
                       for kind, path in int8['models'].items())
    lines = [f'FP32 vs INT8 ({models}); CPU 8-bit instruction sets: '
             f'{", ".join(int8["cpu_features"]) or "unknown"}.', '',
             '| Interleaved, p50 ms | FP32 | INT8 | FP32 / INT8 |', '|---|---:|---:|---:|']
    stages = int8['stages_ms']
    for key, label in (('detector_alone', 'detector alone'), ('depth_alone', 'depth net alone'),
                       ('end_to_end', 'end to end, in process')):
        speedup = int8['speedup_fp32_over_int8'][key]
        lines.append(f'| {label} | {_ms(stages[key + "_fp32"]["p50"])} | '
                     f'{_ms(stages[key + "_int8"]["p50"])} | '
                     f'{"-" if speedup is None else f"{speedup:.2f}"} |')
    return lines


def render_notes(result):
    """Plain-text notes: what could not be measured and why."""
    lines = []
    if result['not_measured']:
        lines.append('Not measured:')
        lines += [f'  - {item}' for item in result['not_measured']]
    if result['notes']:
        lines.append('Notes:')
        lines += [f'  - {item}' for item in result['notes']]
    return '\n'.join(lines)


def _providers(providers):
    if len(set(providers.values())) == 1:
        return next(iter(providers.values()))
    return ', '.join(f'{k} {v}' for k, v in providers.items())


def _count(value):
    return '-' if value is None else str(value)


def _fps(value):
    return '-' if value is None else f'{value:.1f}'


def _mb(value):
    return 'n/a' if value is None else f'{value:.0f} MB'


def _gpu(memory):
    if memory['gpu_memory_mb'] is None:
        return memory.get('gpu_note') or 'n/a'
    return ', '.join(f'pid {pid}: {mb:.0f} MB' for pid, mb in memory['gpu_memory_mb'].items())
