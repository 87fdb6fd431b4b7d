"""Baselines on the same teacher features, data and metrics as Omni-AD.

- :mod:`.knn` — :class:`~.knn.PatchKNN`, nearest-neighbour scoring of patch features (PatchCore-style, Roth et
  al., CVPR 2022), :class:`~.knn.KnnConfig`
- :mod:`.coreset` — greedy k-center coreset subsampling in bounded memory

Fitting a kNN run is :func:`omniad_lite.training.knn_fit.train_knn` (what ``omniad_lite.train`` runs for
``method="knn"``). Nothing is imported here, so that loading a run imports :mod:`.knn` alone.
"""
