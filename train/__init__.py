"""Desktop training and evaluation of DoTCoM classifiers.

* :mod:`.loop` - ``train_one_epoch`` / ``evaluate`` / ``recalibrate_batchnorm``, shared by
  ``train``, ``eval`` and quantize's QAT (exported graphs switch modes through ``set_mode``).
* :mod:`.trainer` - a recipe with timm's parts, DDP under torchrun, resumable runs.
* :mod:`.recipes` - the ``paper`` and ``finetune`` recipes as data, chosen by dataset size.
* :mod:`.plots` - ``curves.png`` (loss and top-1 per epoch).
* :mod:`.compare` - several models (DoTCoM or timm) by one recipe, curves side by side.
* :mod:`.evaluation` - accuracy of checkpoints and exported ``.pte`` files (one JSON row each).
* :mod:`.data` - ImageFolder checks, transforms and loaders.
* :mod:`.synthetic` - a small generated dataset for tests and demos.
* :mod:`.digits` - a small real dataset (scikit-learn's digit scans) as an ImageFolder.

Nothing is imported here, so ``dotcom-mobile --help`` stays fast.
"""
