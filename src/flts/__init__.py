"""FLTS: train, promote and serve load forecasts.

Layers (each imports only from those below it; README "Architecture", checked by import-linter):
``domain`` < ``forecasting`` < ``stages`` < ``adapters``/``messaging`` < ``api`` <
``services``/``infra``/``kfp`` < ``run`` < ``bench`` < ``cli``.
"""

__version__ = "0.1.0"
