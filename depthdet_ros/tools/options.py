"""Command-line options shared by the offline tools that run the node's pipeline.

`depthdet run`, `eval` and `bench` take the node's parameters file and let a few
parameters be overridden on the command line; an option whose dest is a parameter
name (e.g. --max-depth -> max_depth) overrides that parameter.
"""


def add_pipeline_arguments(parser, overrides=('detector_model', 'depth_model', 'providers',
                                              'depth_strategy', 'max_depth')):
    """Add --params-file and one --NAME override option per parameter in `overrides`."""
    from depthdet_ros.ros.params import BY_NAME
    parser.add_argument('--params-file', default='',
                        help='depthdet_node parameters YAML (default: the bundled one)')
    for name in overrides:
        param = BY_NAME[name]
        kind = type(param.default)
        parser.add_argument('--' + name.replace('_', '-'), dest=name, default=None,
                            type=float if kind is float else kind if kind in (int, str)
                            else str, choices=param.choices,
                            help=f'override {name}: {param.description}')


def pipeline_values(args):
    """Return validated parameter values: the params file, then command-line overrides.

    Raises CliError with the one-line reason when a value is invalid.
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
    return values
