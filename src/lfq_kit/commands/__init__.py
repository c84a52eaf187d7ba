"""lfq-kit's commands besides the Trainer's (dispatched by :mod:`lfq_kit.cli`): ``generate``, ``compress``,
``decompress``, ``fit-prior`` and ``rd``."""
