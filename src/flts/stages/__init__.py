"""Stage functions: ``run(request, config, ctx) -> result``, one module per stage.

A stage never reads env, never knows topic names and never commits offsets; it talks to the
world only through the small ports in ``ctx`` (see ``flts.stages.ports``).
"""
