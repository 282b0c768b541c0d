"""In-process measurements: pipeline stages, each model alone, baseline, thread settings.

Variants compared with each other run interleaved, one frame each per round, in an
order that rotates every round, so load from other processes on a shared machine hits
them alike. A short pause separates them: threads of the previous variant that still
busy-wait (onnxruntime spinning, OpenMP barriers) would otherwise run into the next.
"""
import os
import time

from depthdet_ros.bench.stats import Samples

# Long enough for spinning thread pools to go to sleep (onnxruntime and OpenMP spin for
# well under a millisecond before blocking).
PAUSE_BETWEEN_VARIANTS_S = 0.02
# Stage names as reported, in data-path order.
STAGES = ('conversion', 'detector_pre', 'depth_pre', 'detector', 'depth', 'detector_post',
          'depth_post', 'fusion', 'messages', 'end_to_end')
PIPELINE_TIMINGS = ('detector_pre', 'detector', 'detector_post', 'depth_pre', 'depth',
                    'depth_post', 'fusion')


class MessageBuilder:
    """Builds the messages depthdet_node publishes for one frame (needs rclpy)."""

    def __init__(self):
        from std_msgs.msg import Header

        from depthdet_ros.ros import convert
        self._convert = convert
        self.header = Header(frame_id='camera_optical_frame')

    def build(self, result, camera):
        """Return [(topic, message)] as the node builds them, depth image included."""
        convert, header = self._convert, self.header
        objects = result.objects
        messages = list(zip(('detections', 'detections_3d', 'proximity_alert'),
                            convert.frame_messages(objects, header)))
        messages.append(('depth', convert.depth_to_image_msg(result.depth_map, header)))
        if camera is not None:
            messages.append(('depth/camera_info', convert.camera_model_to_info(camera, header)))
        return messages


def usable_cores():
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def message_builder():
    """Return (MessageBuilder, None), or (None, reason) where ROS messages cannot load."""
    try:
        return MessageBuilder(), None
    except ImportError as exc:
        return None, f'ROS 2 Python messages not importable ({exc})'


def process_frame(pipeline, frame, camera, builder=None):
    """Run one raw frame the way the node does; returns (stage ms dict, result, messages)."""
    from depthdet_ros.core.image import decode_raw

    t0 = time.perf_counter()
    rgb = decode_raw(frame.encoding, frame.height, frame.width, frame.step, frame.data)
    t1 = time.perf_counter()
    result = pipeline.process(rgb, camera)
    t2 = time.perf_counter()
    messages = builder.build(result, camera) if builder is not None else None
    t3 = time.perf_counter()
    stages = {'conversion': (t1 - t0) * 1e3}
    stages.update({k: result.timings_ms[k] for k in PIPELINE_TIMINGS if k in result.timings_ms})
    if builder is not None:
        stages['messages'] = (t3 - t2) * 1e3
    stages['end_to_end'] = (t3 - t0) * 1e3
    return stages, result, messages


class IsolatedModels:
    """Each of a pipeline's sessions run on its own, on this frame's network inputs."""

    def __init__(self, pipeline, rgb):
        import numpy as np

        from depthdet_ros.core.detector import letterbox

        detector, depth = pipeline.detector, pipeline.depth
        boxed, _ = letterbox(rgb, detector.input_h, detector.input_w)
        self._detector = (detector.session, {detector.input_name: (np.ascontiguousarray(
            boxed.transpose(2, 0, 1)[None], np.float32) / np.float32(255.0)).astype(
                detector.input_dtype)})
        rng = np.random.default_rng(0)
        self._depth = (depth.session, {depth.input_name: rng.standard_normal(
            (1, 3, depth.input_h, depth.input_w)).astype(depth.input_dtype)})

    @staticmethod
    def _time(session_and_feed):
        session, feed = session_and_feed
        t0 = time.perf_counter()
        session.run(None, feed)
        return (time.perf_counter() - t0) * 1e3

    def detector(self):
        """Run the detector session alone; returns milliseconds."""
        return self._time(self._detector)

    def depth(self):
        """Run the depth session alone; returns milliseconds."""
        return self._time(self._depth)


def interleave(variants, iterations, warmup, schedule=None, progress=None,
               pause_s=PAUSE_BETWEEN_VARIANTS_S):
    """Run named callables round-robin; each returns a ms value or a dict of them.

    `schedule` maps a variant to how many of the rounds it runs in (spread evenly);
    variants not in it run every round. Returns Samples.
    """
    schedule = schedule or {}
    samples = Samples()
    for _ in range(warmup):
        for _, run in variants:
            run()
    for i in range(iterations):
        order = variants[i % len(variants):] + variants[:i % len(variants)]
        for name, run in order:
            count = schedule.get(name, iterations)
            if (i * count) // iterations == ((i + 1) * count) // iterations:
                continue
            time.sleep(pause_s)
            value = run()
            if isinstance(value, dict):
                samples.add_all(value)
            else:
                samples.add(name, value)
        if progress is not None:
            progress(i + 1, iterations)
    return samples


def measure_pipeline(pipeline, frame, camera, iterations, warmup, builder=None,
                     baseline=None, baseline_iterations=0, progress=None):
    """Pipeline stages, each model alone and the baseline, interleaved.

    Returns (Samples, objects per frame). Series: the STAGES, 'detector_alone',
    'depth_alone' and, with a baseline, 'baseline' (PyTorch's default thread count, as
    a notebook runs) and 'baseline_1_thread' (on a loaded machine OpenMP's barriers
    can make the default many times slower; the faster one is the fair reference).
    """
    from depthdet_ros.core.image import decode_raw

    rgb = decode_raw(frame.encoding, frame.height, frame.width, frame.step, frame.data)
    alone = IsolatedModels(pipeline, rgb)
    counts = []

    def pipeline_frame():
        stages, result, _ = process_frame(pipeline, frame, camera, builder)
        counts.append(len(result.objects))
        return stages

    variants = [('pipeline', pipeline_frame), ('detector_alone', alone.detector),
                ('depth_alone', alone.depth)]
    schedule = {}
    if baseline is not None and baseline_iterations > 0:
        default_threads = baseline.default_threads
        variants += [('baseline', lambda: baseline.timed(rgb, default_threads)),
                     ('baseline_1_thread', lambda: baseline.timed(rgb, 1))]
        schedule.update(baseline=baseline_iterations, baseline_1_thread=baseline_iterations)
    samples = interleave(variants, iterations, warmup, schedule, progress)
    objects = sum(counts[warmup:]) / max(len(counts) - warmup, 1)
    return samples, objects


def threading_variants(cores, providers):
    """Thread settings compared by the `threading` section: (name, concurrent, options)."""
    from depthdet_ros.core.session import SessionOptions

    half = max(1, cores // 2)
    return (
        (f'concurrent, {half}+{half} threads, no spinning', True,
         SessionOptions(providers=providers, intra_op_threads=half, allow_spinning=False)),
        (f'concurrent, {cores}+{cores} threads, spinning', True,
         SessionOptions(providers=providers, intra_op_threads=cores, allow_spinning=True)),
        (f'concurrent, {cores}+{cores} threads, no spinning', True,
         SessionOptions(providers=providers, intra_op_threads=cores, allow_spinning=False)),
        (f'sequential, {cores} threads, spinning', False,
         SessionOptions(providers=providers, intra_op_threads=cores, allow_spinning=True)),
        (f'sequential, {cores} threads, no spinning', False,
         SessionOptions(providers=providers, intra_op_threads=cores, allow_spinning=False)),
    )


def measure_threading(models, detector_config, fusion_config, rgb, camera, iterations,
                      warmup, providers, progress=None):
    """Pipeline.process under each of threading_variants, interleaved.

    Returns ({variant name: summary}, cores) with the summary of process() in ms.
    """
    import dataclasses

    from depthdet_ros.core.pipeline import Pipeline

    cores = usable_cores()
    pipelines, variants = [], []
    try:
        for name, concurrent, options in threading_variants(cores, providers):
            pipeline = Pipeline(dataclasses.replace(models, session=options),
                                dataclasses.replace(detector_config),
                                dataclasses.replace(fusion_config), concurrent=concurrent)
            pipelines.append(pipeline)

            def run(pipeline=pipeline):
                t0 = time.perf_counter()
                pipeline.process(rgb, camera)
                return (time.perf_counter() - t0) * 1e3
            variants.append((name, run))
        samples = interleave(variants, iterations, warmup, progress=progress)
    finally:
        for pipeline in pipelines:
            pipeline.close()
    return samples.summaries([name for name, _ in variants]), cores


def measure_int8(fp32, int8, frame, camera, iterations, warmup, progress=None):
    """Time the FP32 and INT8 pipelines end to end and each model alone, interleaved.

    Returns {series: summary} for 'end_to_end', 'detector_alone' and 'depth_alone', each
    with the suffix '_fp32' or '_int8'.
    """
    from depthdet_ros.core.image import decode_raw

    rgb = decode_raw(frame.encoding, frame.height, frame.width, frame.step, frame.data)
    variants = []
    for label, pipeline in (('fp32', fp32), ('int8', int8)):
        alone = IsolatedModels(pipeline, rgb)
        variants += [
            (f'end_to_end_{label}',
             lambda p=pipeline: process_frame(p, frame, camera)[0]['end_to_end']),
            (f'detector_alone_{label}', alone.detector),
            (f'depth_alone_{label}', alone.depth)]
    samples = interleave(variants, iterations, warmup, progress=progress)
    return samples.summaries([name for name, _ in variants])
