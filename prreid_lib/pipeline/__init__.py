"""The training tensor pipeline: decoded images in memory, batch samplers, augmentations.

:mod:`~prreid_lib.pipeline.imageset` decodes a data frame's images once into a
uint8 tensor (cached on disk) with its part boxes; :mod:`~prreid_lib.pipeline.sampler`
draws P x K or random batches; :mod:`~prreid_lib.pipeline.transforms` flips,
crops and normalises whole batches and turns part boxes into grid masks.
The pipeline does not import the model, nor the model the pipeline.
"""
