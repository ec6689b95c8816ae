"""What runs inside the ``panel serve`` process besides the apps."""
