"""FLTS: train, promote and serve load forecasts.

Layers (each imports only from those below it):
``domain`` -> ``forecasting`` -> ``stages`` -> ``adapters`` -> ``runtime`` -> ``api``/``cli``.
"""

__version__ = "0.1.0"
