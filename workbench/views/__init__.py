"""Panel components that render a model. No SQL here."""

# Views build HoloViews objects with options as soon as they are created; that needs a
# plotting backend registered, which a notebook has not done yet (no output is produced).
import holoviews.plotting.bokeh  # noqa: F401
