"""The serving stack run inside a local image (stdlib only; copied into each image as ``serving/``).

``serve.py`` is the container's entry point (``python serve.py serve``, like the platform's
``docker run <image> serve``); ``djl_python`` is a small stand-in for DJL Serving's Python engine
API, importable as ``djl_python`` inside the container.
"""
