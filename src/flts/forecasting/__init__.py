"""Pure forecasting compute on frames and arrays. Never sees a path, URI, client or topic.

Vocabulary: a *processed frame* has a ``ds`` timestamp column followed by the feature columns in
``ForecastSpec.feature_order`` (original units). An *origin* ``i`` is a row index: a forecast from
origin ``i`` reads rows ``[i - lookback, i)`` only and predicts rows ``i .. i + horizon - 1``,
whose timestamps are ``ds[i-1] + step * (k + 1)``.
"""
