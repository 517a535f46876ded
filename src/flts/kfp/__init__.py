"""Kubeflow Pipelines v2 form of the FLTS pipeline: the same stage functions as the Kafka services.

- :mod:`flts.kfp.glue`: KFP inputs -> stage requests, stage results -> artifacts (no kfp import,
  so a task that imports it pays only for flts).
- :mod:`flts.kfp.components`: the four thin components; ``build_components(image)``.
- :mod:`flts.kfp.pipeline`: ``build_pipeline(image)``, ``compile_pipeline(path, image)``.
- :mod:`flts.kfp.local_run`: ``run_pipeline_locally(arguments, pipeline_root, env)`` via kfp.local.
- :mod:`flts.kfp.submit`: ``SubmitPlan`` and ``submit(plan)`` to a KFP server.

This package deliberately imports nothing at import time: ``kfp`` is an optional extra.
"""
