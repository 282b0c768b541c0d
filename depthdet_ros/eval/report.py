"""The evaluation report: JSON (schema below), Markdown summary.

JSON schema 'depthdet-eval/1' (NaN and unknown values are null; depths in metres,
times in milliseconds, shares in [0, 1]):

- schema, created (UTC ISO 8601), command (argv)
- bag: path, storage ('mcap' | 'sqlite3'), duration_s, message_count,
  topics {topic: type}, invalid_camera_info (CameraInfo messages with unusable K)
- topics: image, camera_info, depth, gt_detections, gt_detections_3d (null: absent)
- settings: params_file, detector_model, depth_model, joint_model (null: the pair ran;
  else the pair's are null), providers {detector, depth},
  depth_strategy (the node's), max_depth, class_max_depth {class: m}, score_threshold,
  iou_threshold, stamp_tolerance_ms, match_iou, distance_bands_m, gt_object_depth,
  gt_visibility (in words: how GT object depth and visibility are derived)
- frames: images, processed, corrupt_images, with_camera_info, camera_info_refused
  (a CameraInfo of another aspect ratio than the image: no 3D, as in the node),
  with_gt_depth, with_gt_detections, camera_info_scaled (a CameraInfo of another
  resolution, scaled to the image as the node does), camera_info_other_frame (a
  CameraInfo whose frame_id is not the image's), depth_refused (GT depth maps of
  another aspect ratio than the image: not compared), depth_other_frame (GT depth maps
  whose frame_id is not the image's: compared, but another camera's view), repeated
  (copies of image messages, core.copies, skipped: the topic had two publishers); the
  Markdown and the command's summary warn about the last five (input_warnings)
- corrupt_messages: count, by_topic {topic: n}, items [{topic, bag_time_ns, error}]
  (first MAX_LISTED)
- depth_unpaired: why no image got a message of the depth topic (its stamps too far from
  the images' for stamp_tolerance_ms), null when some did or there is no depth topic
- depth: null without GT depth, else
  metric / median_scaled: {rel, rmse, log10, delta1, delta2, delta3, pixels} and
  median_scale: {mean, std, min, max} of the per-frame scales
- objects: null without GT detections, else gt_depth_sources {source: n},
  strategies [...], detected / ground_truth: {strategy: table}, where table =
  {overall: stats, by_class {class: stats}, by_distance {band: stats},
  by_occlusion {none|partial|heavy|unknown: stats} or null}, stats = {count, missing, mae_m,
  rmse_m, abs_rel, bias_m, over_10pct, over_25pct} (see object_errors)
- detection: null without GT detections, else map50, map50_95, per_class_ap50
  {class: AP}, gt_objects, detections, matched (at match_iou, same class), masks (mask
  mAP, COCO segm: {map50, map50_95, frames}; null unless the model gives instance masks
  and the bag GT instance masks)
- alerts: null without GT detections, else by_strategy {strategy: {objects: {tp, fp,
  fn, precision, recall, f1}, frames: {tp, fp, fn, tn, precision, recall, f1}}}
- latency_ms: {stage: {n, mean, p50, p90, p99}}; stages: decode, the pipeline's
  (detector_pre, detector, detector_post, depth_pre, depth, depth_post, inference,
  fusion) and total (decode + pipeline)
- tracking: null with --no-tracking or without GT detections, else (eval.tracking)
  frames, gt_object_frames, matched_samples; identity {idf1, idp, idr, mota,
  motp_iou, id_switches, false_positives, misses, gt_object_frames, gt_objects,
  mostly_tracked, id_switches_per_100_object_frames}; depth {count, raw_mae_m,
  tracked_mae_m, raw_abs_rel, tracked_abs_rel}; jitter {objects, static_only, raw_m,
  tracked_m, ratio, per_object}; time_to_contact {samples, objects,
  median_rel_error, mean_rel_error, no_estimate, approach_speed_m_s,
  approach_range_m, moving_objects {the same five figures for objects moving in the
  world}}; alerts {objects_with_alerts, transitions {raw, tracked,
  time_to_contact, ground_truth}, flickering_objects {raw, tracked}, per_object};
  alert_topic (proximity_alert as published, every frame of each GT object)
  {gt_alert_object_frames, on_topic, recall, entries, entries_due, entries_duplicate,
  entries_on_no_gt_object, objects_with_alerts, transitions {topic, ground_truth},
  flickering_objects, per_object}
- settings.tracker: the TrackerConfig used (null without tracking);
  settings.tracker_gt_depth: relative noise of the GT depth fed to the tracker
  instead of the network's (null: the network's depth); settings.camera_odometry: the
  Odometry topic whose camera motion the tracker was given (null: none), or
  settings.odom_frame: the frame in which the camera's pose on /tf gave it, and then
  tracking.frames_without_camera_motion: the frames it gave none for,
  tracking.camera_motion_problem: why the first of them had none (null: none),
  tracking.transforms_refused: why each transform of the bag's /tf_static
  (--tf-static) and, with --odom-frame, /tf (--tf) left out was
- outputs: json, markdown, plots [...], output_bag (null when not written)
"""
import datetime
import json
import math
import shlex
from typing import Dict, List, Optional

import numpy as np

from depthdet_ros.eval.object_errors import error_tables, OCCLUSION_LEVELS, UNKNOWN_OCCLUSION

SCHEMA = 'depthdet-eval/1'
MAX_LISTED = 50
GT_OBJECT_DEPTH = ('median GT depth of the object pixels: pixels of the GT box whose GT '
                   'surface point lies inside the GT 3D box (box3d_pixels); the 3D centre z '
                   'where that is unavailable (center_z)')
GT_VISIBILITY = ('estimated: object pixels / (object pixels + pixels occluded in front of the '
                 'GT 3D box); levels none >= 0.9 > partial >= 0.5 > heavy')


def _clean(value):
    """Turn NaN/inf into None and numpy scalars into Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _latency_summary(series: Dict[str, List[float]]) -> Dict[str, Dict]:
    from depthdet_ros.bench.stats import summarize
    return {stage: summarize(values) for stage, values in series.items() if values}


def build_report(results, index, settings, run: Dict) -> Dict:
    """Assemble the JSON-ready report.

    `results` (evaluate.EvalResults), `index` (bag_input.BagIndex), `settings`
    (evaluate.EvalSettings); `run` holds path, command, params_file, detector_model,
    depth_model, providers, score_threshold, iou_threshold, stamp_tolerance_ms.
    """
    corrupt = index.corrupt
    by_topic: Dict[str, int] = {}
    for item in corrupt:
        by_topic[item.topic] = by_topic.get(item.topic, 0) + 1
    report = {
        'schema': SCHEMA,
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'command': run['command'],
        'bag': {'path': str(run['path']), 'storage': index.storage,
                'duration_s': index.duration_s, 'message_count': index.message_count,
                'topics': dict(sorted(index.topic_types.items())),
                'invalid_camera_info': index.invalid_camera_info},
        'topics': index.topics.as_dict(),
        'settings': {
            'params_file': run['params_file'], 'detector_model': run['detector_model'],
            'depth_model': run['depth_model'], 'joint_model': run.get('joint_model'),
            'providers': run['providers'],
            'depth_strategy': settings.configured_strategy, 'max_depth': settings.max_depth,
            'class_max_depth': dict(settings.class_max_depth),
            'score_threshold': run['score_threshold'], 'iou_threshold': run['iou_threshold'],
            'stamp_tolerance_ms': run['stamp_tolerance_ms'], 'match_iou': settings.match_iou,
            'distance_bands_m': list(settings.distance_edges_m),
            'gt_object_depth': GT_OBJECT_DEPTH, 'gt_visibility': GT_VISIBILITY,
            'tracker': run.get('tracker'), 'tracker_gt_depth': run.get('tracker_gt_depth'),
            'camera_odometry': run.get('camera_odometry'),
            'odom_frame': run.get('odom_frame')},
        'frames': dict(results.frames.__dict__),
        'corrupt_messages': {'count': len(corrupt), 'by_topic': by_topic,
                             'items': [{'topic': c.topic, 'bag_time_ns': c.bag_time_ns,
                                        'error': c.error} for c in corrupt[:MAX_LISTED]]},
        'depth_unpaired': index.depth_unpaired,
        'depth': None, 'objects': None, 'detection': None, 'alerts': None,
        'tracking': results.tracking,
        'latency_ms': _latency_summary(results.latency_ms),
        'outputs': {'json': None, 'markdown': None, 'plots': [], 'output_bag': None},
    }
    if results.depth_metric is not None:
        scales = np.asarray(results.median_scales, dtype=np.float64)
        report['depth'] = {
            'metric': results.depth_metric.as_dict(),
            'median_scaled': results.depth_median_scaled.as_dict(),
            'median_scale': {'mean': float(scales.mean()), 'std': float(scales.std()),
                             'min': float(scales.min()), 'max': float(scales.max())}
            if scales.size else None}
    if results.detection is not None:
        tables = error_tables(results.samples, settings.strategies, settings.distance_edges_m)
        report['objects'] = {
            'gt_depth_sources': results.gt_depth_sources,
            'strategies': list(settings.strategies),
            **{source: {strategy: table.as_dict() for strategy, table in by_strategy.items()}
               for source, by_strategy in tables.items()}}
        detection = results.detection
        report['detection'] = {'map50': detection.map50, 'map50_95': detection.map50_95,
                               'per_class_ap50': detection.per_class_ap50,
                               **results.detection_counts,
                               'masks': None if results.masks is None else {
                                   'map50': results.masks.map50,
                                   'map50_95': results.masks.map50_95,
                                   'frames': results.mask_frames}}
        report['alerts'] = {'by_strategy': {
            strategy: {'objects': tally.objects().as_dict(), 'frames': tally.frames().as_dict()}
            for strategy, tally in results.alerts.items()}}
    return _clean(report)


def write_json(report: Dict, path) -> None:
    """Write the report as indented JSON (strict: no NaN)."""
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=1, allow_nan=False)
        f.write('\n')


# ---- Markdown ------------------------------------------------------------------------

def input_warnings(report) -> List[str]:
    """Say which inputs were taken in ways that may not describe the images."""
    frames, topics, warnings = report['frames'], report['topics'], []
    if frames['repeated']:
        warnings.append(
            f'{frames["repeated"]} image(s) of {topics["image"]} came twice (the same message '
            'again within a frame or two: two publishers on the topic while it was '
            'recorded?): each evaluated once, as the node gives a copy no new answer')
    if frames['depth_other_frame']:
        warnings.append(
            f'{frames["depth_other_frame"]} depth map(s) of {topics["depth"]} have another '
            'frame_id than the images: a depth camera\'s own view, compared pixel by pixel '
            'with the colour image\'s; give a depth topic registered to the colour camera '
            '(a RealSense\'s aligned_depth_to_color) with --depth-topic')
    if frames['depth_refused']:
        warnings.append(
            f'{frames["depth_refused"]} depth map(s) of {topics["depth"]} have another aspect '
            'ratio than the images: left out of the depth metrics and GT object depths')
    if frames['camera_info_other_frame']:
        warnings.append(
            f'{frames["camera_info_other_frame"]} frame(s) took a CameraInfo of '
            f'{topics["camera_info"]} whose frame_id is not the images\': another camera\'s '
            'intrinsics give the depth net the wrong focal length and the 3D positions the '
            'wrong rays; give the image\'s own with --camera-info-topic')
    if frames['camera_info_scaled']:
        warnings.append(
            f'{frames["camera_info_scaled"]} frame(s) took a CameraInfo of '
            f'{topics["camera_info"]} made for another resolution, scaled to the image as '
            'the node does: right for a resized stream, wrong for another camera\'s')
    return warnings


def no_depth_why(report) -> str:
    """Say why the report has no dense depth metrics."""
    topic = report['topics']['depth']
    if topic is None:
        return 'No ground-truth depth topic: skipped.'
    if report['depth_unpaired']:
        return f'No frame has ground-truth depth: {report["depth_unpaired"]}.'
    if report['frames']['depth_refused']:
        return (f'No frame has ground-truth depth: the depth maps of {topic} have another '
                'aspect ratio than the images.')
    unreadable = report['corrupt_messages']['by_topic'].get(topic, 0)
    if not unreadable:
        return (f'No frame has ground-truth depth: no evaluated image could be read with its '
                f'message of {topic}.')
    first = next((item['error'] for item in report['corrupt_messages']['items']
                  if item['topic'] == topic), None)
    return (f'No frame has ground-truth depth: {unreadable} message(s) of {topic} could not '
            'be read as depth (32FC1 metres or 16UC1 millimetres, raw or compressedDepth png)'
            + (f'; the first: {first}.' if first else '.'))


def _num(value, digits=3, unit=''):
    return '-' if value is None else f'{value:.{digits}f}{unit}'


def _pct(value):
    return '-' if value is None else f'{100 * value:.0f} %'


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(' --- ' if i == 0 else ' ---: ' for i in range(len(header))) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return lines


def _object_cell(stats: Optional[Dict]) -> str:
    if not stats or not stats['count']:
        return '-'
    mae = '-' if stats['mae_m'] is None else f'{stats["mae_m"]:.2f} m'
    return f'{mae} · {_pct(stats["over_10pct"])} (n={stats["count"]})'


def _object_tables(objects: Dict, source: str, title: str) -> List[str]:
    tables = objects[source]
    strategies = objects['strategies']
    lines = [f'### {title}', '']
    if not any(tables[s]['overall']['count'] for s in strategies):
        return lines + ['No object to score.', '']
    lines += ['Cells: MAE · share of objects missing or off by more than 10 % (n objects).', '']
    overall_rows = []
    for s in strategies:
        o = tables[s]['overall']
        overall_rows.append([s, str(o['count']), str(o['missing']), _num(o['mae_m']),
                             _num(o['rmse_m']), _num(o['abs_rel']), _num(o['bias_m']),
                             _pct(o['over_10pct']), _pct(o['over_25pct'])])
    lines += _table(['strategy', 'n', 'missing', 'MAE m', 'RMSE m', 'AbsRel', 'bias m',
                     '>10 %', '>25 %'], overall_rows) + ['']
    for key, label in (('by_occlusion', 'occlusion'), ('by_distance', 'distance'),
                       ('by_class', 'class')):
        groups: List[str] = []
        for s in strategies:
            for g in tables[s][key] or {}:
                if g not in groups:
                    groups.append(g)
        if not groups:
            if key == 'by_occlusion':
                lines += ['By occlusion: skipped (no ground-truth visibility).', '']
            continue
        if key == 'by_occlusion':
            order = [name for name, _ in OCCLUSION_LEVELS] + [UNKNOWN_OCCLUSION]
            groups = [g for g in order if g in groups]
        rows = [[s] + [_object_cell((tables[s][key] or {}).get(g)) for g in groups]
                for s in strategies]
        note = ' (visibility ' + GT_VISIBILITY + ')' if key == 'by_occlusion' else ''
        lines += [f'By {label}{note}:', ''] + _table(['strategy'] + groups, rows) + ['']
    return lines


def markdown(report: Dict) -> str:
    """Render the report as a Markdown summary."""
    settings, frames = report['settings'], report['frames']
    lines = [f'# depthdet eval: `{report["bag"]["path"]}`', '',
             f'Command: `{shlex.join(report["command"])}`', '',
             (f'- joint model: `{settings["joint_model"]}` ' if settings.get('joint_model')
              else f'- detector: `{settings["detector_model"]}`, depth: '
              f'`{settings["depth_model"]}` ') + '(execution providers: ' + ', '.join(
                 f'{k} {v}' for k, v in settings['providers'].items()) + ')',
             f'- node strategy `{settings["depth_strategy"]}`, max_depth '
             f'{settings["max_depth"]} m, score threshold {settings["score_threshold"]}, '
             f'stamp tolerance {settings["stamp_tolerance_ms"]} ms',
             f'- bag: {report["bag"]["storage"]}, {report["bag"]["duration_s"]:.1f} s, '
             f'{report["bag"]["message_count"]} messages; topics: ' + ', '.join(
                 f'{k}=`{v}`' for k, v in report['topics'].items() if v),
             f'- frames: {frames["images"]} images, {frames["processed"]} processed, '
             f'{frames["corrupt_images"]} corrupt; with camera_info '
             f'{frames["with_camera_info"]}'
             + (f' ({frames["camera_info_refused"]} more refused: another aspect ratio)'
                if frames['camera_info_refused'] else '')
             + f', GT depth {frames["with_gt_depth"]}, '
             f'GT detections {frames["with_gt_detections"]}',
             f'- corrupt messages skipped: {report["corrupt_messages"]["count"]}'
             + (' (' + ', '.join(f'{t}: {n}' for t, n in
                                 report['corrupt_messages']['by_topic'].items()) + ')'
                if report['corrupt_messages']['count'] else ''), '']
    warnings = input_warnings(report)
    lines += [f'**Warning:** {warning}.' for warning in warnings] + ([''] if warnings else [])
    depth = report['depth']
    lines += ['## Dense depth (valid GT pixels)', '']
    if depth is None:
        lines += [no_depth_why(report), '']
    else:
        rows = []
        for name, key in (('metric', 'metric'), ('median-scaled', 'median_scaled')):
            m = depth[key]
            rows.append([name, _num(m['rel']), _num(m['rmse']), _num(m['log10']),
                         _num(m['delta1']), _num(m['delta2']), _num(m['delta3']),
                         str(m['pixels'])])
        lines += _table(['prediction', 'REL', 'RMSE m', 'log10', 'δ1', 'δ2', 'δ3', 'pixels'],
                        rows) + ['']
        if depth['median_scale']:
            s = depth['median_scale']
            lines += [f'Median scale GT/pred per frame: mean {_num(s["mean"])}, std '
                      f'{_num(s["std"])} (1.0 = metric scale right; the median-scaled row '
                      'is for relative-depth models).', '']
    objects = report['objects']
    lines += ['## Per-object depth', '']
    if objects is None:
        lines += ['No ground-truth detections: skipped.', '']
    else:
        lines += [f'GT object depth: {settings["gt_object_depth"]}. Sources: '
                  + ', '.join(f'{k} {v}' for k, v in objects['gt_depth_sources'].items())
                  + '.', '']
        lines += _object_tables(objects, 'ground_truth',
                                'On ground-truth boxes (depth strategy alone)')
        lines += _object_tables(objects, 'detected',
                                f'On detected boxes (matched at IoU ≥ {settings["match_iou"]}, '
                                'same class)')
    detection = report['detection']
    if detection is not None:
        lines += ['## Detection', '',
                  f'mAP@0.5 {_num(detection["map50"])}, mAP@0.5:0.95 '
                  f'{_num(detection["map50_95"])} on the published detections (score ≥ '
                  f'{settings["score_threshold"]}); {detection["detections"]} detections, '
                  f'{detection["gt_objects"]} GT objects, {detection["matched"]} matched.', '']
        masks = detection.get('masks')
        if masks is not None:
            lines += [f'Instance masks: mask mAP@0.5 {_num(masks["map50"])}, mAP@0.5:0.95 '
                      f'{_num(masks["map50_95"])} over the {masks["frames"]} frames with GT '
                      'instance masks.', '']
        if detection['per_class_ap50']:
            lines += _table(['class', 'AP@0.5'], [[k, _num(v)] for k, v in
                                                  sorted(detection['per_class_ap50'].items())])
            lines += ['']
    alerts = report['alerts']
    if alerts is not None:
        lines += ['## Proximity alerts', '',
                  f'GT alert: GT object depth < {settings["max_depth"]} m (class_max_depth '
                  'where set). Node strategy marked *.', '']
        rows = []
        for s, counts in alerts['by_strategy'].items():
            o, f = counts['objects'], counts['frames']
            rows.append([s + (' *' if s == settings['depth_strategy'] else ''),
                         _num(o['precision']), _num(o['recall']), f'{o["tp"]}/{o["fp"]}/{o["fn"]}',
                         _num(f['precision']), _num(f['recall']),
                         f'{f["tp"]}/{f["fp"]}/{f["fn"]}/{f["tn"]}'])
        lines += _table(['strategy', 'object P', 'object R', 'tp/fp/fn', 'frame P', 'frame R',
                         'tp/fp/fn/tn'], rows) + ['']
    if report.get('tracking'):
        source = f"`{settings['camera_odometry']}` (--camera-odometry)" \
            if settings.get('camera_odometry') else \
            f"its pose in `{settings['odom_frame']}` on the bag's transforms (--odom-frame)" \
            if settings.get('odom_frame') else None
        lines += _tracking_lines(report['tracking'], settings.get('tracker_gt_depth'), source)
    lines += ['## Latency (ms, this machine, one frame at a time)', '']
    lines += _table(['stage', 'n', 'mean', 'p50', 'p90', 'p99'],
                    [[stage, str(v['n']), _num(v['mean'], 1), _num(v['p50'], 1),
                      _num(v['p90'], 1), _num(v['p99'], 1)]
                     for stage, v in report['latency_ms'].items()]) + ['']
    plots = report['outputs']['plots']
    if plots:
        lines += ['## Plots', ''] + [f'![{p}]({p})' for p in plots] + ['']
    if report['outputs']['output_bag']:
        lines += [f'Output bag with detections, alerts and depth: '
                  f'`{report["outputs"]["output_bag"]}`', '']
    return '\n'.join(lines)


def _tracking_lines(t: Dict, gt_depth_noise: Optional[float],
                    camera_motion: Optional[str] = None) -> List[str]:
    identity, depth, jitter = t['identity'], t['depth'], t['jitter']
    ttc, alerts = t['time_to_contact'], t['alerts']
    switches = identity['id_switches_per_100_object_frames']
    lines = ['## Tracking', '',
             f'Tracker over {t["frames"]} frames with GT ({t["gt_object_frames"]} GT '
             f'object-frames, {identity["gt_objects"]} GT objects). Identity on confirmed '
             'tracks, same class, IoU >= 0.5 (py-motmetrics).', '']
    if gt_depth_noise is not None:
        lines += [f'**The tracker was fed GT depth x (1 + N(0, {gt_depth_noise:g})) for matched '
                  "detections instead of the network's** (--tracker-gt-depth).", '']
    if camera_motion:
        lines += [f"The tracker was given the camera's own motion from {camera_motion}; "
                  f'{t.get("frames_without_camera_motion", 0)} frames had none (no message '
                  'or pose near the stamp, another frame\'s, or a glitch: tracked as the node '
                  'tracks them)'
                  + (f'; the first: {t["camera_motion_problem"]}'
                     if t.get('camera_motion_problem') else '') + '.', '']
        refused = t.get('transforms_refused') or []
        if refused:
            lines += [f'{len(refused)} transform(s) left out: '
                      + '; '.join(refused) + '.', '']
    lines += _table(['IDF1', 'IDP', 'IDR', 'MOTA', 'ID switches', 'per 100 object-frames',
                     'FP', 'misses'],
                    [[_num(identity['idf1']), _num(identity['idp']), _num(identity['idr']),
                      _num(identity['mota']), str(identity['id_switches']),
                      _num(switches, 2), str(identity['false_positives']),
                      str(identity['misses'])]]) + ['']
    kind = 'static objects' if jitter['static_only'] else 'all objects (no motion truth)'
    lines += ['Depth (tracked objects matched to GT): raw against tracked.', '']
    lines += _table(['', 'raw', 'tracked', 'tracked / raw'],
                    [['depth MAE m (n ' + str(depth['count']) + ')', _num(depth['raw_mae_m']),
                      _num(depth['tracked_mae_m']),
                      _num(depth['tracked_mae_m'] / depth['raw_mae_m'])
                      if depth['raw_mae_m'] else '-'],
                     [f'depth jitter m, {kind} (median of {jitter["objects"]}; the ratio '
                      'is the median of per-object ratios)',
                      _num(jitter['raw_m']), _num(jitter['tracked_m']),
                      _num(jitter['ratio'])]]) + ['']
    lines += [f'Time to contact, approaching objects (GT closing speed '
              f'{ttc.get("approach_speed_m_s", "-")} m/s, range {ttc.get("approach_range_m", "-")}'
              f' m, confirmed tracks): {ttc["samples"]} samples of {ttc["objects"]} objects, '
              f'median relative error {_pct(ttc["median_rel_error"])} (errors capped at '
              f'100 %, as no estimate), mean '
              f'{_pct(ttc["mean_rel_error"])}, no estimate {ttc["no_estimate"]}; of them, '
              f'objects moving in the world: {ttc["moving_objects"]["samples"]} samples, '
              f'median relative error {_pct(ttc["moving_objects"]["median_rel_error"])}.', '']
    tr = alerts['transitions']
    lines += [f'Proximity alert transitions (enters + leaves) over {alerts["objects_with_alerts"]}'
              f' objects: raw {tr["raw"]}, tracked {tr["tracked"]}, ground truth '
              f'{tr["ground_truth"]} (time-to-contact alert: {tr["time_to_contact"]}); '
              f'objects flickering (more enters or leaves than their GT, at least one allowed): '
              f'raw {alerts["flickering_objects"]["raw"]}, tracked '
              f'{alerts["flickering_objects"]["tracked"]}.', '']
    topic = t['alert_topic']
    lines += ['proximity_alert as published (alerts held through missed detections included),'
              ' over every frame of each GT object: '
              f'{topic["on_topic"]} of {topic["gt_alert_object_frames"]} GT-alert '
              f'object-frames on the topic (recall {_pct(topic["recall"])}; a GT object alerts '
              'when its GT depth is below the threshold or its GT time to contact below '
              f'alert_time_to_contact); of its {topic["entries"]} entries, '
              f'{topic["entries_due"]} due by the GT (the same rules with their hysteresis), '
              f'{topic["entries_duplicate"]} duplicates (a second entry on a GT object) and '
              f'{topic["entries_on_no_gt_object"]} on no GT object; enters + leaves '
              f'{topic["transitions"]["topic"]} against the GT alert\'s '
              f'{topic["transitions"]["ground_truth"]} over {topic["objects_with_alerts"]} '
              f'objects, {topic["flickering_objects"]} flickering.', '']
    return lines
