"""A small stand-in for DJL Serving's ``djl_python`` package: the ``Input``/``Output`` a ``handle()`` sees."""

from djl_python.inputs import Input
from djl_python.outputs import Output

__all__ = ["Input", "Output"]
