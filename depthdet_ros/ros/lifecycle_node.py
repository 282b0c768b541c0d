"""depthdet_node as a managed (lifecycle) node, for stacks that bring nodes up in order.

The same work as depthdet_node (DepthDetRunner), step by step:
configure loads and warms the models and advertises the outputs; activate starts the
worker threads and subscribes; deactivate unsubscribes and stops the threads (no CPU
used; the outputs stay advertised, so subscribers stay matched, as an rclcpp
LifecyclePublisher's do); cleanup removes the publishers and frees the models.
Parameters are declared (and validated) at start-up. Those that change at run time may
be set in any state; the others (models, providers, outputs, input QoS) while
unconfigured, for the next configure: a configure that failed on a model can be fixed
without restarting the node.

    ros2 lifecycle set /depthdet_node configure
    ros2 lifecycle set /depthdet_node activate
"""
import sys

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from depthdet_ros.core.session import ModelLoadError
from depthdet_ros.ros.node import DepthDetRunner, LogsParameterRefusals, run
from depthdet_ros.ros.params import ConfigError


class DepthDetLifecycleNode(LogsParameterRefusals, LifecycleNode):
    """depthdet_node with configure / activate / deactivate / cleanup transitions."""

    def __init__(self, **kwargs):
        super().__init__('depthdet_node', **kwargs)
        self.runner = DepthDetRunner(self, managed=True)

    def on_configure(self, state):
        """Load and warm the models; a model that cannot be used fails the transition."""
        try:
            self.runner.configure()
        except (ConfigError, ModelLoadError) as exc:
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        """Start publishing and subscribing."""
        self.runner.activate()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state):
        """Stop subscribing and processing; the models stay loaded."""
        self.runner.deactivate()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state):
        """Remove the publishers and free the models."""
        self.runner.cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state):
        """Stop everything, from whichever state."""
        if self.runner.active:
            self.runner.deactivate()
        self.runner.cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state):
        """Back to unconfigured after a failed transition: stop and free everything."""
        return self.on_shutdown(state)

    def destroy_node(self):
        """Stop the threads and free the models, then destroy the node."""
        self.runner.shutdown()
        super().destroy_node()

    def _LifecycleNodeMixin__on_change_state(self, request, response):
        """Refuse a transition id the current state does not have (success false).

        rclpy's change_state service checks a transition given by label, but one given
        by id goes straight to rcl, whose error escapes the service callback and ends
        the node (rclpy 7.1.6). The service is bound to this name, so this runs first.
        """
        transition = request.transition
        if not transition.label:
            available = {t[0] for t in self._state_machine.available_transitions}
            if transition.id not in available:
                state = self._state_machine.current_state[1]
                self.get_logger().warning(
                    f'change_state refused: transition id {transition.id} is not available '
                    f'in state {state!r} (available: {sorted(available)})')
                response.success = False
                return response
        return super()._LifecycleNodeMixin__on_change_state(request, response)


def main(args=None):
    """Entry point of depthdet_lifecycle_node."""
    return run(DepthDetLifecycleNode, args)


if __name__ == '__main__':
    sys.exit(main())
