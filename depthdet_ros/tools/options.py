"""Command-line options shared by the offline tools that run the node's pipeline.

`depthdet run`, `eval` and `bench` take the node's parameters file and let a few
parameters be overridden on the command line; an option whose dest is a parameter
name (e.g. --max-depth -> max_depth) overrides that parameter.
"""

# The parameters naming the two-model pair that a joint model replaces.
PAIR_MODELS = ('detector_model', 'depth_model')


def joint_conflict(joint_source: str, pair_option: str) -> str:
    """One-line error: a joint model given together with one of the pair's models."""
    return (f'{joint_source} replaces the detector and depth pair: give a joint model or '
            f'{pair_option}, not both')


def add_override(parser, name, help_text=None):
    """Add the --NAME option overriding node parameter NAME (default: the parameter's doc)."""
    from depthdet_ros.ros.params import BY_NAME
    param = BY_NAME[name]
    kind = type(param.default)
    parser.add_argument('--' + name.replace('_', '-'), dest=name, default=None,
                        type=float if kind is float else kind if kind in (int, str)
                        else str, choices=param.choices,
                        help=help_text or f'override {name}: {param.description}')


def add_pipeline_arguments(parser, overrides=('detector_model', 'depth_model', 'joint_model',
                                              'providers', 'depth_strategy', 'max_depth')):
    """Add --params-file and one --NAME override option per parameter in `overrides`."""
    parser.add_argument('--params-file', default='',
                        help='depthdet_node parameters YAML (default: the bundled one)')
    for name in overrides:
        add_override(parser, name)


def pipeline_values(args):
    """Return validated parameter values: the params file, then command-line overrides.

    Raises CliError with the one-line reason when a value is invalid, or when a
    detector or depth model is given on the command line while a joint model (from the
    command line or the params file) replaces the pair.
    """
    from depthdet_ros.assets import default_params_file
    from depthdet_ros.cli import CliError
    from depthdet_ros.ros.params import BY_NAME, check_value, ConfigError, load_params_file
    try:
        values = load_params_file(getattr(args, 'params_file', '') or default_params_file())
        for name in BY_NAME:
            value = getattr(args, name, None)
            if value not in ('', None):
                values[name] = check_value(name, value)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    pair = [name for name in PAIR_MODELS if getattr(args, name, None)]
    if values['joint_model'] and pair:
        source = '--joint-model' if getattr(args, 'joint_model', None) else \
            'the params file\'s joint_model'
        raise CliError(joint_conflict(source, '--' + pair[0].replace('_', '-')))
    return values
