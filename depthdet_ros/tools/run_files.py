"""`depthdet run`: the pipeline on image files, with the node's parameters file.

Writes annotated images and a JSON record per run; an input that is not a readable
image is skipped and listed as such.
"""
import glob
import json
import os

from depthdet_ros.arg_types import output_folder
from depthdet_ros.tools.options import add_pipeline_arguments, pipeline_values

# What cv2.imread reads (without optional codecs): a folder's other files are not images.
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.jpe', '.bmp', '.dib', '.tif', '.tiff', '.webp',
                    '.jp2', '.pbm', '.pgm', '.ppm', '.pnm', '.sr', '.ras')
# What a camera_calibration YAML must hold for 3D output.
CALIBRATION_KEYS = ('image_width', 'image_height', 'camera_matrix')


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
                        help='camera calibration YAML (camera_calibration format) for 3D '
                             'output; intrinsics of another image size are scaled to the '
                             'image when the aspect ratios agree, else not used for it '
                             '(no 3D), with a warning, as depthdet_node does')
    camera.add_argument('--hfov', type=float, default=None,
                        help='horizontal field of view in degrees (0 < hfov < 180) for an '
                             'ideal pinhole camera')
    parser.add_argument('--out', default='out/run',
                        help='output folder (default: out/run): NAME_annotated.png per image '
                             '(and NAME_depth.npy with --save-depth), NAME being the file name '
                             'without extension, with -2, -3, ... added in input order when '
                             'names repeat; results.json lists each image\'s files')
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


def output_names(paths):
    """Return one output base name per path: its file name without extension, made unique.

    A name an earlier path already took gets -2, -3, ... so that outputs never
    overwrite each other and the same inputs always get the same names. Names are
    compared ignoring case, as a case-insensitive file system would.
    """
    taken, names = set(), []
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        name, number = stem, 1
        while name.casefold() in taken:
            number += 1
            name = f'{stem}-{number}'
        taken.add(name.casefold())
        names.append(name)
    return names


def load_camera_yaml(path):
    """Read a camera_calibration YAML (image_width, camera_matrix, distortion_coefficients).

    Raises CliError naming the file and what is wrong with it.
    """
    import numpy as np
    import yaml

    from depthdet_ros.cli import CliError
    from depthdet_ros.core.camera import CameraModel, CameraModelError
    expected = 'a camera_calibration YAML has image_width, image_height and camera_matrix'
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise CliError(f'cannot read --camera-info {path}: {exc.strerror}') from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = f' (line {mark.line + 1})' if mark is not None else ''
        raise CliError(f'--camera-info {path} is not valid YAML{where}; {expected}') from None
    missing = [key for key in CALIBRATION_KEYS if key not in data] \
        if isinstance(data, dict) else list(CALIBRATION_KEYS)
    if missing:
        raise CliError(f'--camera-info {path} has no {", ".join(missing)}; {expected}')

    def numbers(key):
        try:
            return np.asarray(data[key]['data'], dtype=np.float64).reshape(-1)
        except (KeyError, TypeError, ValueError):
            raise CliError(f'--camera-info {path}: {key} must have data: [numbers]') from None

    K = numbers('camera_matrix')
    if K.size != 9:
        raise CliError(f'--camera-info {path}: camera_matrix data must hold 9 numbers '
                       f'(3x3, row by row), not {K.size}')
    D = numbers('distortion_coefficients') if 'distortion_coefficients' in data \
        else np.zeros(0)
    try:
        width, height = int(data['image_width']), int(data['image_height'])
    except (TypeError, ValueError):
        width = height = 0
    if width <= 0 or height <= 0:
        raise CliError(f'--camera-info {path}: image_width and image_height must be positive '
                       'integers')
    camera = CameraModel(K=K.reshape(3, 3), width=width, height=height, D=D,
                         frame_id=str(data.get('camera_name') or ''),
                         distortion_model=str(data.get('distortion_model') or ''))
    try:
        camera.validate()
    except CameraModelError as exc:
        raise CliError(f'--camera-info {path}: {exc}') from None
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


def count(number, noun):
    """'1 image', '2 images'."""
    return f'{number} {noun}{"" if number == 1 else "s"}'


def run(args):
    """Process every image; print a table per image; write results.json."""
    import cv2
    import numpy as np
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from depthdet_ros.cli import CliError
    from depthdet_ros.core.camera import CameraModel
    from depthdet_ros.core.session import ModelLoadError
    from depthdet_ros.ros.message_layout import from_estimate
    from depthdet_ros.ros.params import build_pipeline, class_filter_set, parse_class_max_depth
    from depthdet_ros.ros.visualize import draw_objects

    if args.hfov is not None and not 0 < args.hfov < 180:
        raise CliError(f'--hfov {args.hfov:g} is not a horizontal field of view: give degrees '
                       'between 0 and 180, e.g. --hfov 70')
    paths = collect_images(args.inputs)
    values = pipeline_values(args)
    camera = load_camera_yaml(args.camera_info) if args.camera_info else None
    output_folder(args.out)
    try:
        pipeline = build_pipeline(values)
    except (ModelLoadError, OSError) as exc:
        raise CliError(str(exc)) from None
    # soft_wrap: a message stays one line whatever the terminal width.
    console = Console(soft_wrap=True)
    warned_sizes = set()
    records = []
    try:
        for path, name in zip(paths, output_names(paths)):
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is None:
                console.print(f'[yellow]skipped {escape(path)}: not a readable image[/yellow]')
                records.append({'image': path, 'error': 'not a readable image'})
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            frame_camera = camera
            if args.hfov is not None:
                frame_camera = CameraModel.from_fov(w, h, args.hfov)
            elif camera is not None:
                # As depthdet_node does for a camera_info of another resolution.
                frame_camera = camera.for_image(w, h)
                if frame_camera is not camera and (w, h) not in warned_sizes:
                    warned_sizes.add((w, h))
                    what = ('scaling the intrinsics to it' if frame_camera is not None else
                            'another aspect ratio: its intrinsics do not describe the image, '
                            'no 3D positions for it')
                    console.print(
                        f'[yellow]warning: --camera-info {escape(args.camera_info)} is '
                        f'{camera.width}x{camera.height} but {escape(path)} is {w}x{h}: '
                        f'{what}[/yellow]')
            result = pipeline.process(rgb, frame_camera)
            files = {'annotated': name + '_annotated.png'}
            if not cv2.imwrite(os.path.join(args.out, files['annotated']),
                               cv2.cvtColor(draw_objects(rgb, [from_estimate(o) for o in
                                                               result.objects]),
                                            cv2.COLOR_RGB2BGR)):
                raise CliError(f'could not write {os.path.join(args.out, files["annotated"])}')
            if args.save_depth:
                files['depth'] = name + '_depth.npy'
                np.save(os.path.join(args.out, files['depth']), result.depth_map)
            objects = [object_record(o) for o in result.objects]
            records.append({'image': path, 'width': w, 'height': h, 'files': files,
                            'objects': objects,
                            'timings_ms': {k: round(v, 2) for k, v in result.timings_ms.items()}})
            table = Table(title=f'{escape(path)}  ({result.timings_ms["inference"]:.0f} ms)')
            for column in ('class', 'score', 'depth m', 'position m', 'alert'):
                table.add_column(column, justify='right')
            for o in objects:
                position = ', '.join(f'{v:+.2f}' for v in o['position_m']) \
                    if o['position_m'] else '-'
                depth = f'{o["depth_m"]:.2f}' if o['depth_m'] is not None else '?'
                table.add_row(o['class'], f'{o["score"]:.2f}', depth, position,
                              'ALERT' if o['alert'] else '')
            console.print(table)
    finally:
        pipeline.close()
    results_file = os.path.join(args.out, 'results.json')
    with open(results_file, 'w', encoding='utf-8') as f:
        # The settings that decide what is detected and what alerts; the class lists
        # decoded from their ROS parameter form ([""]: none): [] keeps every class.
        params = {k: values[k] for k in (
            'detector_model', 'depth_model', 'joint_model', 'score_threshold',
            'iou_threshold', 'max_detections', 'depth_strategy', 'max_depth',
            'assumed_hfov_deg')}
        params['class_filter'] = sorted(class_filter_set(values['class_filter']))
        params['class_max_depth'] = parse_class_max_depth(values['class_max_depth'])
        json.dump({'params': params,
                   # The camera 3D positions and the depth scale came from.
                   'camera': {'camera_info': args.camera_info or None, 'hfov_deg': args.hfov},
                   'images': records}, f, indent=1)
    processed = sum('error' not in r for r in records)
    if not processed:
        raise CliError(f'no readable image in {count(len(records), "input")} (listed in '
                       f'{results_file}); give image files or folders of images')
    console.print(f'{count(processed, "image")} processed, {len(records) - processed} skipped '
                  f'(not readable); results in {escape(results_file)}')
    return 0
