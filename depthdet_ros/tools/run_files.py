"""`depthdet run`: the pipeline on image files, with the node's parameters file.

Writes annotated images and a JSON record per run; every file is processed.
"""
import glob
import json
import os

from depthdet_ros.tools.options import add_pipeline_arguments, pipeline_values

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def add_parser(subparsers):
    """Register `depthdet run`."""
    parser = subparsers.add_parser(
        'run', help='detect and range objects in image files',
        description='Run the detector + depth pipeline (or the joint model, --joint-model) on '
                    'image files or folders of images, with the same parameters file as '
                    'depthdet_node.')
    parser.add_argument('inputs', nargs='+', help='image files or folders')
    add_pipeline_arguments(parser)
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument('--camera-info', default='',
                        help='camera calibration YAML (camera_calibration format) for 3D output')
    camera.add_argument('--hfov', type=float, default=0.0,
                        help='horizontal field of view in degrees for an ideal pinhole camera')
    parser.add_argument('--out', default='out/run', help='output folder (default: out/run)')
    parser.add_argument('--save-depth', action='store_true',
                        help='also save each depth map as float32 .npy (metres, NaN invalid)')
    parser.set_defaults(func=run)
    return parser


def collect_images(inputs):
    """Expand files and folders into a sorted list of image paths."""
    from depthdet_ros.cli import CliError
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            paths += sorted(p for p in glob.glob(os.path.join(item, '*'))
                            if p.lower().endswith(IMAGE_EXTENSIONS))
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise CliError(f'no such file or folder: {item}')
    if not paths:
        raise CliError('no images found in ' + ', '.join(inputs))
    return paths


def load_camera_yaml(path):
    """Read a camera_calibration YAML (image_width, camera_matrix, distortion_coefficients)."""
    import numpy as np
    import yaml

    from depthdet_ros.core.camera import CameraModel
    with open(path, encoding='utf-8') as f:
        data = yaml.safe_load(f)
    K = np.array(data['camera_matrix']['data'], dtype=np.float64).reshape(3, 3)
    D = np.array(data.get('distortion_coefficients', {}).get('data', []), dtype=np.float64)
    camera = CameraModel(K=K, width=int(data['image_width']), height=int(data['image_height']),
                         D=D, frame_id=data.get('camera_name', ''))
    camera.validate()
    return camera


def object_record(obj):
    """JSON-ready dict of one ObjectEstimate (None where a number is unknown)."""
    def number(value):
        return None if value is None or value != value else round(float(value), 4)

    det, depth = obj.detection, obj.depth
    record = {'class': det.class_name, 'score': number(det.score),
              'box_xyxy': [number(v) for v in (det.box.x1, det.box.y1, det.box.x2, det.box.y2)],
              'depth_m': number(depth.depth), 'spread_m': number(depth.spread),
              'alert': obj.alert, 'position_m': None}
    if obj.position is not None:
        record['position_m'] = [number(obj.position.x), number(obj.position.y),
                                number(obj.position.z)]
    return record


def run(args):
    """Process every image; print a table per image; write results.json."""
    import cv2
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from depthdet_ros.cli import CliError
    from depthdet_ros.core.camera import CameraModel, CameraModelError
    from depthdet_ros.core.session import ModelLoadError
    from depthdet_ros.ros.params import build_pipeline
    from depthdet_ros.ros.visualize import draw_objects

    paths = collect_images(args.inputs)
    values = pipeline_values(args)
    try:
        pipeline = build_pipeline(values)
        camera = load_camera_yaml(args.camera_info) if args.camera_info else None
    except (ModelLoadError, CameraModelError, OSError, KeyError) as exc:
        raise CliError(str(exc)) from None
    console = Console()
    os.makedirs(args.out, exist_ok=True)
    records = []
    for path in paths:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            console.print(f'[yellow]skipped {path}: not a readable image[/yellow]')
            records.append({'image': path, 'error': 'not a readable image'})
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        frame_camera = camera
        if args.hfov:
            frame_camera = CameraModel.from_fov(w, h, args.hfov)
        elif camera is not None and (camera.width, camera.height) != (w, h):
            frame_camera = camera.scaled(w / camera.width, h / camera.height)
        result = pipeline.process(rgb, frame_camera)
        stem = os.path.splitext(os.path.basename(path))[0]
        cv2.imwrite(os.path.join(args.out, stem + '_annotated.png'),
                    cv2.cvtColor(draw_objects(rgb, result.objects), cv2.COLOR_RGB2BGR))
        if args.save_depth:
            np.save(os.path.join(args.out, stem + '_depth.npy'), result.depth_map)
        objects = [object_record(o) for o in result.objects]
        records.append({'image': path, 'width': w, 'height': h, 'objects': objects,
                        'timings_ms': {k: round(v, 2) for k, v in result.timings_ms.items()}})
        table = Table(title=f'{path}  ({result.timings_ms["inference"]:.0f} ms)')
        for column in ('class', 'score', 'depth m', 'position m', 'alert'):
            table.add_column(column, justify='right')
        for o in objects:
            position = ', '.join(f'{v:+.2f}' for v in o['position_m']) \
                if o['position_m'] else '-'
            depth = f'{o["depth_m"]:.2f}' if o['depth_m'] is not None else '?'
            table.add_row(o['class'], f'{o["score"]:.2f}', depth, position,
                          'ALERT' if o['alert'] else '')
        console.print(table)
    pipeline.close()
    with open(os.path.join(args.out, 'results.json'), 'w', encoding='utf-8') as f:
        json.dump({'params': {k: values[k] for k in ('detector_model', 'depth_model',
                                                     'joint_model', 'depth_strategy',
                                                     'max_depth')},
                   'images': records}, f, indent=1)
    console.print(f'{len(records)} images; results in {args.out}')
    return 0
