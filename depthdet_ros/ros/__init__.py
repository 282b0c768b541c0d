"""ROS 2 nodes and message conversion: thin layers over the core."""
